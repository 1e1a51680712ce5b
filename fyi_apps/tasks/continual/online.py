"""Online distillation memories (``dm``, ``dm+fyi``, ``dsa``, ``dsa+fyi``, ``dc``, ``dc+fyi``).

Mode (b): each experience's new classes are distilled from that experience's
training data alone, when the experience arrives (:class:`OnlineDistillation`).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ...errors import FyiError
from ...runtime import cache_key, derive_seed
from .benchmarks import dataset_from_tensors
from .memory import MemorySource, register_memory, unknown_memory

#: methods that can distil an experience on the fly (plain images, no expert trajectories needed)
ONLINE_METHODS = ("dm", "dsa", "dc")


def method_options(method: str, options: dict | None) -> dict:
    """The part of a dict of distillation options shared by several methods that ``method`` accepts.

    An option no online method accepts is refused (a typo must not pass silently).
    """
    options = dict(options or {})
    try:
        from ...distill import option_names
    except ImportError:  # a distill package without typed options: pass everything through
        return options
    accepted = {m: set(option_names(m)) for m in ONLINE_METHODS}
    unknown = sorted(k for k in options if not any(k in a for a in accepted.values()))
    if unknown:
        valid = sorted(set().union(*accepted.values()))
        raise FyiError(f"distillation options {unknown} are not options of {', '.join(ONLINE_METHODS)}; "
                       f"valid: {', '.join(valid)}")
    return {k: v for k, v in options.items() if k in accepted[method]}


@register_memory("dm", "dsa", "dc")
class OnlineDistillation(MemorySource):
    """Mode (b): distil the new classes of each experience from that experience's data alone.

    Runs a registered plain-encoding method (``dm``, ``dsa``, ``dc``) through
    :class:`fyi_apps.distill.Distiller` on a dataset made of the experience's
    images of the new classes; the distilled images get the original class ids.
    ``fyi``: ``None`` or a view name (``"flip"`` is the paper).  ``info`` (the
    benchmark dataset's :class:`~fyi_apps.data.DatasetInfo`) gives mean/std.
    Every distillation is recorded in ``self.log``.
    """

    kind = "distill"
    takes_variant = True

    @classmethod
    def from_spec(cls, spec, opts):
        method, fyi = spec.kind, None
        if spec.variant:
            name, _, sub = spec.variant.partition(":")
            if name != "fyi":
                raise unknown_memory(spec.text)
            fyi = sub or "flip"
        its = opts.iterations.get(method) if isinstance(opts.iterations, dict) else opts.iterations
        br = opts.batch_real.get(method) if isinstance(opts.batch_real, dict) else opts.batch_real
        return cls(method, info=opts.info, fyi=fyi, iterations=its, lr_img=opts.lr_img, batch_real=br,
                   arch=opts.arch, options=method_options(method, opts.distill_options), seed=opts.seed,
                   device=opts.device, bf16=opts.bf16, progress=opts.progress, cache_dir=opts.cache_dir)

    def __init__(self, method: str = "dm", *, info, fyi: str | None = None, iterations: int | None = None,
                 lr_img: float | None = None, batch_real: int | None = None, init: str = "real",
                 arch: str = "convnet", dsa: bool | None = None, options: dict | None = None, seed: int = 0,
                 device="auto", bf16: bool = False, progress: bool = False, cache_dir: str | Path | None = None):
        from ...distill import resolve_config

        if str(method).lower() not in ONLINE_METHODS:
            raise FyiError(f"online distillation supports {', '.join(ONLINE_METHODS)}, not {method!r} "
                           "(IDC stores encoded images, MTT/FTD need expert trajectories); use a file:PATH memory")
        if info is None:
            raise FyiError("online distillation needs the dataset's info (mean/std); pass info=dataset.info")
        self.info = getattr(info, "info", info)
        self.method, self.fyi = str(method).lower(), fyi
        self.iterations, self.lr_img, self.batch_real, self.init = iterations, lr_img, batch_real, init
        self.arch, self.dsa, self.options = arch, dsa, dict(options or {})
        self.seed, self.device, self.bf16, self.progress = int(seed), device, bool(bf16), progress
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.log: list[dict] = []
        resolve_config(self._config(1, seed=0))  # fail now, not after the first experience

    def _config(self, ipc: int, seed: int):
        from ...distill import DistillConfig

        return DistillConfig(method=self.method, dataset=self.info.name, ipc=int(ipc), fyi=self.fyi,
                             iterations=self.iterations, lr_img=self.lr_img, batch_real=self.batch_real,
                             init=self.init, arch=self.arch, dsa=self.dsa, seed=seed, checkpoint_every=10**9,
                             bf16=self.bf16, options=dict(self.options))

    def _cache_path(self, cfg, sub) -> Path | None:
        """Same config, classes and pixels -> same file (distillation is deterministic given its seed)."""
        if self.cache_dir is None:
            return None
        from ...distill import resolve_config

        key = cache_key(resolve_config(cfg).identity(), 20, separators=(", ", ": "), default=str,  # as on disk
                        extra=(list(sub.info.class_names), sub.train.images.numpy().tobytes(),
                               sub.train.labels.numpy().tobytes()))
        tag = self.method + (f"-fyi-{self.fyi}" if self.fyi else "")
        return self.cache_dir / f"{tag}_ipc{cfg.ipc}_{key}.fyi.safetensors"

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        from ...distill import Distiller, resolve_config
        from ...synset import load_synset, save_synset

        sub = dataset_from_tensors(x, y, self.info, classes, source="experience")
        given = self._config(per_class, derive_seed(self.seed, "cl-distill", self.method, self.fyi or "", *classes))
        cfg = resolve_config(given)  # once: the cache key and the run use the same resolved config
        t0 = time.perf_counter()
        path = self._cache_path(cfg, sub)
        cached = path is not None and path.exists()
        syn = None
        if cached:
            try:
                syn = load_synset(path)
            except FyiError as e:  # a cache entry the user never made: say so (not its advice), distil again
                import sys

                why = getattr(e, "reason", e)
                print(f"fyi: warning: cached online distillation {path} is not usable ({why}); it is a cache, so "
                      "it is distilled again and the file replaced", file=sys.stderr)
                cached = False
        if syn is None:
            syn = Distiller(cfg, sub, device=self.device).run(None, progress=self.progress)
            if path is not None:
                save_synset(path, syn)
        images, labels = syn.decoded()
        labels = torch.tensor(list(classes), dtype=torch.long)[labels.cpu()]
        self.log.append({"classes": list(classes), "ipc": per_class, "iterations": syn.extra.get("iterations_done"),
                         "final_loss": syn.extra.get("final_loss"), "seconds": time.perf_counter() - t0,
                         "distill_seconds": syn.extra.get("seconds"), "cached": cached,
                         "file": None if path is None else str(path), "config": dataclasses.asdict(given)})
        return images.detach().float().cpu(), labels

    def describe(self) -> dict:
        return {"kind": self.kind, "method": self.method, "fyi": self.fyi, "iterations": self.iterations,
                "lr_img": self.lr_img, "batch_real": self.batch_real, "init": self.init, "arch": self.arch,
                "options": self.options, "seed": self.seed}
