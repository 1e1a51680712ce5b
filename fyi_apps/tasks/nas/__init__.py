"""NAS proxies: rank many architectures cheaply by training them on a small set.

The other job people distil datasets for.  Every candidate architecture is
trained with the evaluation protocol (:mod:`fyi_apps.evaluate`) twice:

* on a *proxy* (a synthetic-set file, or a random / herding real subset of the
  same size) for ``proxy_epochs``;
* on the *ground truth* training set: the whole training set (``full``) or a
  stated larger real subset (``real:N`` = N random images per class) for
  ``full_epochs``;

and the two accuracy lists are compared with rank statistics (Spearman's rho
and Kendall's tau from :mod:`scipy.stats`, over all candidates and over the
top-k by ground truth, as FTD's Table 5 reports), top-k overlap, the
ground-truth accuracy and rank of the proxy's favourite, and the compute saved
(ground-truth training seconds / proxy training seconds).

Candidates are plain strings that :func:`fyi_apps.networks.create_model`
understands, so they serve as JSON keys, cache keys and CLI values alike:

* ``dc720``: the search space of the DC paper, depth 1-4 x width 32/64/128/256
  x activation sigmoid/relu/leakyrelu x normalisation none/batch/layer/
  instance/group x pooling none/max/avg = 720 ConvNets, named like
  ``convnet:depth=2,width=64,act=sigmoid,norm=batch,pool=max``;
* ``classic``: ConvNet, VGG-11, ResNet-18, AlexNet; ``mixed``: those plus a few
  timm models (``timm:<name>``); or any comma-separated list of names.

Every training run is one *job* (candidate, training set, protocol, seed) whose
result is one JSON record in a cache folder, named by a hash of everything that
defines it and written atomically; a rerun skips finished records, so an
interrupted ranking continues where it stopped.

Parallelism, without a scheduler of our own:

* ``workers=W``: a ``concurrent.futures.ProcessPoolExecutor`` (spawn) of W
  processes on this machine, each with ``cores // W`` torch threads;
* ``torchrun --nproc-per-node N fyi nas ...`` (several GPUs or nodes):
  ``torch.distributed`` (NCCL on CUDA, else gloo); rank r trains candidates
  ``r::world_size``, the records are gathered with ``all_gather_object`` and
  rank 0 writes the report.

Modules, lowest first: :mod:`.measure` (parameters, MACs, fit on the meta
device), :mod:`.spaces` (named spaces, :func:`register_space`, the sampler),
:mod:`.sets` (training-set specs), :mod:`.zerocost` (zero-cost proxies), :mod:`.runner` (jobs, the record cache,
worker processes, ``torch.distributed``), :mod:`.stats` (rank statistics),
:mod:`.truth` (ground truths), :mod:`.experiment` (:class:`NasConfig`, the
plan, :func:`run_ranking`), :mod:`.report` (tables and plots) and :mod:`.cli`
(``fyi nas``).  Everything public is re-exported here.
"""
from __future__ import annotations

from .cli import add_common_training_arguments, add_nas_arguments, curve_list, run_nas_command, topk_list
from .experiment import (PARAMS_LABEL, VOTE, NasConfig, build_jobs, check_config, curve_points, ensemble_entries,
                         ensemble_parts, paired_comparisons, plan, run_ranking, summarize)
from .result import ProxyStats, RankingResult
from .measure import Measurement, candidate_fits, candidate_mmacs, candidate_params, measure, meta_model
from .report import candidate_rows, paired_rows, summary_rows, write_json_report, write_markdown, write_report
from .runner import (RECORD_VERSION, Job, RecordCache, default_threads, distributed_session, execute,
                     finish_distributed, init_distributed, make_job, materialize, rank_world, remember_dataset,
                     run_jobs, shard, train_job)
from .sets import (FREE_PROXIES, SetSpec, content_hash, data_digest, early_stopping_set, free_proxy, resolve_set,
                   unique_labels, zero_cost_sets)
from .zerocost import ZERO_COST, score_network
from .spaces import (DC_ACTS, DC_DEPTHS, DC_NORMS, DC_POOLS, DC_WIDTHS, NAMED_SPACES, Space, dc_candidate, dc_space,
                     list_spaces, nb201_space, register_space, sample_candidates, space_candidates, split_names,
                     unique_names)
from .stats import is_connected_candidate, rank_stats, rho_difference, topk_counts
from .truth import benchmark_table, truth_set

__all__ = [
    # spaces
    "Space", "register_space", "NAMED_SPACES", "list_spaces", "space_candidates", "sample_candidates",
    "split_names", "unique_names", "dc_candidate", "dc_space", "nb201_space",
    "DC_DEPTHS", "DC_WIDTHS", "DC_ACTS", "DC_NORMS", "DC_POOLS",
    # measurements
    "candidate_fits", "candidate_mmacs", "candidate_params", "meta_model", "measure", "Measurement",
    # training sets
    "SetSpec", "resolve_set", "unique_labels", "free_proxy", "early_stopping_set", "FREE_PROXIES", "data_digest",
    "content_hash", "zero_cost_sets", "ZERO_COST", "score_network",
    # runner
    "Job", "make_job", "RecordCache", "RECORD_VERSION", "remember_dataset", "materialize", "train_job", "run_jobs",
    "execute", "default_threads", "init_distributed", "rank_world", "shard", "finish_distributed",
    "distributed_session",
    # statistics, ground truth, the ranking, the report, the command line
    "rank_stats", "rho_difference", "topk_counts", "is_connected_candidate", "benchmark_table", "truth_set",
    "NasConfig", "check_config", "plan", "build_jobs", "curve_points", "summarize", "run_ranking",
    "ensemble_parts", "ensemble_entries", "paired_comparisons", "PARAMS_LABEL", "VOTE", "RankingResult", "ProxyStats",
    "summary_rows", "candidate_rows", "paired_rows", "write_report", "write_json_report", "write_markdown",
    "add_common_training_arguments", "add_nas_arguments", "run_nas_command", "topk_list", "curve_list",
]
