"""What a continual-learning experiment is: :class:`CLConfig`, whose fields are ``fyi cl``'s options.

A light module (no Avalanche): ``fyi cl --help`` makes its flags from these
fields (:mod:`fyi_apps.options`).  The flags of options a protocol presets
default to None on the command line: a value not given comes from the
protocol's preset, else from the field's default.  The config stays mutable
(old field names are set through it); :func:`.experiment.run_experiment`
checks every field with the one validator before it runs anything.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from ... import validate as V
from ...augment import MODES
from ...deprecated import renamed_fields, renamed_keys
from ...options import key_values, option
from .choices import ORDER_RULES, STREAM_AUG_NAMES
from .registry import PROTOCOLS


def _seed_list(value: Any, name: str) -> list[int]:
    return V.seed_list(value, name)  # the class orders' seeds (the command line's --seeds N is their number)


@renamed_fields  # the old field names (fyi_apps.deprecated.FIELDS) still work, with a warning
@dataclass
class CLConfig:
    """Budgets and settings of a continual-learning experiment (every field is a ``fyi cl`` option)."""

    benchmark: str = option("split-cifar10", cli_default=None, help=(
        "split-cifar10 (default), split-fashion-mnist, split-digits, split-cifar100[-5|-10|-20]"))
    memories: list[str] = option(
        default_factory=lambda: ["random", "herding", "dm", "dm+fyi"], flag="--memory", aliases=("--buffer", "--buffers"),
        cli_default=None, help=(
            "replay memories, comma-separated: random, herding, dm, dm+fyi, dsa, dsa+fyi, dc, dc+fyi (distilled online "
            "per experience), file:PATH or LABEL:PATH (a synthetic-set file distilled offline, e.g. "
            "dm:sets/dm_ipc10.safetensors), or native (er-ace's own buffer); default random,herding,dm,dm+fyi "
            "(er-ace-avalanche: native)"))
    ipc: int = option(10, min=V.MIN_IPC, cli_default=None, help="memory images per class (default 10; dm-paper 20)")
    protocol: str = option("gdumb", choices=PROTOCOLS, help=(
        "gdumb: fresh network on the memory at each step; dm-paper: gdumb with the DM paper's settings (Split "
        "CIFAR-100 in 5 and 10 steps, IPC 20, 1000 epochs, 5 numpy class orders); replay: an Avalanche strategy "
        "(--strategy) trains on the stream and replays the memory; er-ace-avalanche: Avalanche's ER-ACE baseline on "
        "Split CIFAR-10 (its reference settings, 5 seeds)"))
    # one class order per seed; the flag is their number (seed, seed+1, ...)
    seeds: list[int] = option(default_factory=lambda: [0, 1, 2], convert=_seed_list, arg_type=V.positive_int,
                              cli_default=None, help="number of class orders (seed, seed+1, ...; default 3, dm-paper 5)")
    experiences: int | None = option(None, min=1, arg_type=V.int_list_arg(min=1), help=(
        "number of experiences, or several (5,10) run one after the other (default: the benchmark's; dm-paper 5,10)"))
    arch: str = option("convnet", cli_default=None, help=(
        "network trained on the memory (and used for distillation; default convnet, er-ace-avalanche "
        "slimresnet18:incremental=True)"))
    # online distillation, per experience (defaults: a budget for a 2-core CPU, far below the papers'
    # 20,000 DM / 1,000 DSA iterations with 256 real images per class and DSA loops (10, 50) at IPC 10)
    iterations: int | dict = option(default_factory=lambda: {"dm": 300, "dsa": 10, "dc": 10}, cli_default=None, help=(
        "online distillation iterations per experience: N, or per method (default dm=300,dsa=10,dc=10)"))
    batch_real: int | dict | None = option(
        default_factory=lambda: {"dm": 64, "dsa": 64, "dc": 64}, cli_default=None,
        help="distillation: real images per class per iteration: N, or per method (default dm=64,dsa=64,dc=64)")
    lr_img: float | None = option(None, min=0.0, min_open=True,
                                  help="distillation: learning rate of the synthetic images")
    distill_options: dict = option(  # DSA/DC loops
        default_factory=lambda: {"outer_loop": 5, "inner_loop": 10}, flag="--distill-option", append=True,
        metavar="KEY=VALUE", cli_default=[], parse=functools.partial(key_values, flag="--distill-option"), help=(
            "distillation method options, replacing the default outer_loop=5, inner_loop=10 of DSA/DC (repeatable)"))
    herding_epochs: int = option(1, min=0, help=(
        "gdumb: epochs of the per-experience feature network for herding (replay uses the learner)"))
    # protocol 1 (gdumb): fyi-apps evaluation protocol (fewer epochs than the paper's 1000)
    epochs: int = option(100, min=1, cli_default=None,
                         help="gdumb: training epochs on the memory at each step (default 100; dm-paper 1000)")
    dsa: bool = option(True, flag="--no-dsa", help="gdumb: train on the memory without DSA augmentation")
    # protocol 2 (replay)
    strategy: str = option("naive", cli_default=None, help=(
        "replay: naive, ewc, lwf (each + ReplayPlugin with the memory) or er-ace (Avalanche's ER_ACE with the memory "
        "as its storage policy)"))
    train_epochs: int = option(3, min=1, cli_default=None, help="replay: epochs per experience (default 3)")
    lr: float = option(0.01, min=0.0, min_open=True, cli_default=None,
                       help="learning rate of the trained network (default 0.01)")
    batch_size: int = option(128, min=1, cli_default=None, help="replay: minibatch size (default 128)")
    bf16: bool = option(False, help="bf16 autocast")
    distill_cache: str | None = option(None, help="folder reused across runs/protocols (None: no cache)")
    # fields added later: left out of a run's cache key while at their default, so older caches stay valid
    order_rule: str = option("fyi", flag="--class-order", choices=ORDER_RULES, cli_default=None, help=(
        "class orders from a seeded torch permutation (fyi, default), np.random.seed(k).permutation (numpy, the DM "
        "paper's; dm-paper's default) or 0..n-1 (fixed, er-ace-avalanche's)"))
    batch_size_mem: int | None = option(None, min=1, help=(
        "replay: memory images per minibatch (default: --batch-size; er-ace: at most twice one experience's memory)"))
    train_per_class: int | None = option(None, min=1, help=(
        "a reduced benchmark: this many training images per class (a fixed random subset, the same for every class "
        "order and memory; default: all)"))
    dsa_mode: str = option("single", choices=MODES, help=(
        "gdumb: DSA as in the original papers (single: one random operation), as in the FYI code (fyi: a random flip "
        "plus one operation) or all operations"))
    stream_aug: str = option("none", choices=STREAM_AUG_NAMES, cli_default=None, help=(
        "replay: augmentation of every training minibatch, stream and replayed images: a random horizontal flip per "
        "image (flip), one DSA operation (dsa) or the FYI code's flip + one operation (dsa-fyi), or Avalanche's "
        "default CIFAR transform (crop-flip: random crop with 4 px padding + flip; er-ace-avalanche's); default none"))
    # set by a protocol's preset (no flag of their own)
    momentum: float = option(0.9, min=0.0, help="replay: SGD momentum")
    weight_decay: float = option(5e-4, min=0.0, help="replay: SGD weight decay")
    holdout: float = option(0.0, min=0.0, max=0.5, help=(
        "replay: fraction of each experience's training data held out (Avalanche's validation stream)"))
    drop_last: bool = option(False, help="replay: drop each experience's last incomplete minibatch")
    eval_batch_size: int | None = option(None, min=1, help=(
        "replay: Avalanche's eval_mb_size (default: max(batch_size, 256))"))

    @classmethod
    def for_protocol(cls, protocol: str, **fields) -> "CLConfig":
        """A config with ``protocol``'s presets (e.g. ``dm-paper``: CIFAR-100, IPC 20, 1,000 epochs), then ``fields``."""
        preset = renamed_keys(PROTOCOLS.get(protocol).defaults, cls)  # old field names, in a preset or here, warn
        return cls(**{**copy.deepcopy(preset), "protocol": PROTOCOLS.canonical(protocol), **renamed_keys(fields, cls)})


#: the fields ``fyi cl`` has no flag for: ``--fresh`` sets the cache; a protocol's preset sets the others
NO_FLAG = ("distill_cache", "momentum", "weight_decay", "holdout", "drop_last", "eval_batch_size")
