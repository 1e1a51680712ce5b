"""What a NAS-proxy ranking is: :class:`NasConfig`, whose fields are ``fyi nas``'s options.

Each field declares its option once (:mod:`fyi_apps.options`): default, help,
bounds, and for the command line the flag and the parser of its text
(``--topk 5,10%``).  The training options (``lr``, ``batch_size``, ``dsa`` ...)
are :class:`~fyi_apps.evaluate.EvalConfig`'s, declared there.  A config is
frozen and checked when it is made: each field, then the rules that involve
several (``curve`` within ``proxy_epochs``, ``nb201`` only where it is read).
"""
from __future__ import annotations

import os
from typing import Any

from ... import validate as V
from ...errors import FyiError
from ...evaluate import EvalConfig
from ...networks.spaces import list_spaces, split_names
from ...options import check_fields, config, option, same_option
from .stats import topk_counts
from .zerocost import ZERO_COST

#: candidates drawn from a named space when ``sample`` is not given
DEFAULT_SAMPLE = 24


def curve_list(text: str) -> list[int]:
    """``"5,10,25"`` -> ``[5, 10, 25]`` (proxy epochs of the learning curve; empty text: no curve)."""
    out = []
    for t in (t.strip() for t in str(text or "").split(",")):
        if t:
            try:
                out.append(int(t))
            except ValueError:
                raise FyiError(f"--curve takes proxy epochs separated by commas (5,10,25), got {t!r}") from None
    return sorted(set(out))


def topk_list(text: str) -> list:
    """``"5,10%,20%"`` -> ``[5, "10%", "20%"]`` (checked now; percentages resolve per ranking)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    topk_counts(items, 100)  # refuses anything that is neither a count nor a percentage
    return [t if t.endswith("%") else int(t) for t in items]


def _names(value: Any, name: str) -> list[str]:
    """One name or several; one string is one name (never iterated letter by letter)."""
    return V.name_list(value, name, split=False)


def _optional_names(value: Any, name: str) -> list[str]:
    return [] if value in (None, "", []) else V.name_list(value, name, split=name == "include")


def _candidates(value: Any, name: str) -> list[str] | None:
    return None if value is None else V.name_list(value, name)


def _epochs(value: Any, name: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, str):  # "5,10" read as the command line reads it, not letter by letter
        value = curve_list(value)
    return [V.integer(e, name, min=1) for e in (value or [])]


def _topk(value: Any, name: str) -> list:
    if isinstance(value, str):  # "5,10%" read as the command line reads it
        return topk_list(value)
    return [value] if isinstance(value, int) else list(value)


def _path_or_none(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (str, os.PathLike)):
        return value
    raise FyiError(f"{name} must be a folder path, got {value!r} (a {type(value).__name__})")


@config
class NasConfig:
    """Everything that defines a NAS-proxy ranking (``fyi nas`` options; frozen)."""

    dataset: str = option("cifar10", required=True, help="dataset name (see `fyi data`)")
    proxies: list[str] = option(
        default_factory=lambda: ["random"], flag="--proxy", append=True, cli_default=None, convert=_names,
        metavar="SYNSET|random|herding|early|params|flops|...", help=(
            "a proxy: a synthetic set, a random or herding real subset, early (full data for one proxy run's "
            "compute), params / flops (no training), or a zero-cost proxy (" + ", ".join(ZERO_COST) + ": one "
            "minibatch, no training); repeat for several (default: random)"))
    ipc: int | None = option(None, min=V.MIN_IPC, help=(
        "images per class of random/herding proxies (default: the first synthetic proxy's IPC)"))
    space: str = option("dc720", help=lambda: (
        f"candidate space: {', '.join(list_spaces())}, or a comma-separated list of models"))
    sample: int | None = option(None, min=0, help=(
        f"candidates drawn from the space (0: all of them; default: {DEFAULT_SAMPLE} from a named space, every "
        "candidate of an explicit list)"))
    include: list[str] = option(default_factory=list, parse=split_names, cli_default="", convert=_optional_names,
                                help="candidates always added, e.g. vgg11,resnet18")
    max_mmacs: float | None = option(None, min=0.0, min_open=True, help=(
        "sample only candidates of at most this many million MACs per image (a compute cap)"))
    candidates: list[str] | None = option(None, convert=_candidates,
                                          help="an explicit list of candidates (replaces space and sample)")
    proxy_epochs: int = option(300, min=1, help="training epochs of each proxy run")
    curve: list[int] = option(
        default_factory=list, parse=curve_list, cli_default="", convert=_epochs, metavar="E1,E2,...", help=(
            "learning curve: also test every trained proxy after these proxy epochs of the same run (e.g. "
            "5,10,25,50,100,200; early stopping at the same image-passes)"))
    ensembles: list[str] = option(
        default_factory=list, flag="--ensemble", append=True, cli_default=None, convert=_optional_names,
        metavar="A+B", help=(
            "also rank by the mean rank of several proxies (their labels or --proxy texts joined by '+', e.g. "
            "params+synflow); 'vote' = synflow+jacob_cov+snip; repeat for several"))
    truth: str = option("full", help=(
        "ground truth: full (train on the whole training set), real:N (N random images per class, a cheaper "
        "stated budget) or nb201 (NAS-Bench-201's 200-epoch accuracies; --space nb201)"))
    nb201: str | None = option(None, convert=_path_or_none, metavar="CSV", help=(
        "the NAS-Bench-201 accuracy table (default $FYI_NB201, else nas-bench-201-accuracies.csv in the data roots)"))
    nb201_cells: int | None = option(None, min=1, help=(
        "cells per stage of nb201 candidates (the benchmark's 5; 1 is DC-Bench's cheaper network)"))
    nb201_width: int | None = option(None, min=1, help="channels of nb201 candidates' first stage (16)")
    connected_only: bool = option(False, help=(
        "nb201: leave out cells whose output is disconnected from the input (they score 10 %)"))
    stratified: bool = option(False, help="nb201: draw --sample cells evenly across the NAS-Bench-201 accuracy range")
    full_epochs: int = option(30, min=1, help="ground-truth training epochs")
    seeds: int = option(1, min=1, help="training seeds per candidate and set")
    seed: int = option(0, min=0, help="base random seed")
    topk: list = option(default_factory=lambda: [5, 10, 20], parse=topk_list, cli_default="5,10,20",
                        convert=_topk, help=(
                            "top-k sizes (by ground truth) for the rank statistics; counts or percentages (10%,20%)"))
    test_size: int | None = option(None, min=1, help=(
        "test on a fixed class-balanced subset of this many test images (default: all)"))
    lr: float | None = same_option(EvalConfig, "lr")
    batch_size: int = same_option(EvalConfig, "batch_size")
    dsa: bool = same_option(EvalConfig, "dsa")
    dsa_mode: str = same_option(EvalConfig, "dsa_mode")
    bf16: bool = same_option(EvalConfig, "bf16")
    channels_last: bool = same_option(EvalConfig, "channels_last")
    herding_epochs: int = option(1, min=0, help="epochs of the feature network herding selects with")
    workers: int = option(1, min=1, help="parallel worker processes on this machine (spawned)")
    threads: int | None = option(None, min=1, help="torch threads per worker (default: cores / workers)")
    data_root: str | None = option(None, convert=_path_or_none, help="folder holding the dataset files")

    def __post_init__(self) -> None:
        """Each field checked (one line naming it), then the rules that involve several fields."""
        check_fields(self)
        topk_counts(self.topk, 100)  # refuses 0, negative and malformed sizes now, not after the training
        reads_table = self.truth.strip().lower() == "nb201" or self.stratified
        if self.nb201 and not reads_table:
            raise FyiError(f"--nb201 {self.nb201} names the NAS-Bench-201 table, which only --truth nb201 or "
                           f"--stratified read, but the ground truth is {self.truth!r}; drop --nb201 or use "
                           "--truth nb201")
        for e in self.curve:
            if not 1 <= e <= self.proxy_epochs:
                raise FyiError(f"curve points are proxy epochs between 1 and proxy_epochs ({self.proxy_epochs}), "
                               f"got {e!r}")

    def eval_config(self, epochs: int) -> EvalConfig:
        """The training protocol of one run of ``epochs`` epochs (this config's training options)."""
        return EvalConfig(epochs=int(epochs), lr=self.lr, batch_size=self.batch_size, dsa=self.dsa,
                          dsa_mode=self.dsa_mode, bf16=self.bf16, channels_last=self.channels_last)


def check_config(cfg: NasConfig) -> None:
    """Kept for callers: a :class:`NasConfig` is checked when it is made (it is frozen), so this only re-checks it."""
    NasConfig.__post_init__(cfg)
