"""Memory kinds from real data and from synthetic-set files: random, herding, ``file:PATH`` / ``LABEL:PATH``.

* :class:`RandomSelection` (``random``): class-balanced random real images;
* :class:`HerdingSelection` (``herding``): iCaRL's herding with Avalanche's
  ``HerdingSelectionStrategy`` (stopped after the ``k`` images kept, :class:`FirstKHerding`);
* :class:`FromSynset` (``file:PATH``, ``LABEL:PATH``): the images of a synthetic-set file.

Online distillation (``dm``, ``dm+fyi``, ...) is in :mod:`.online`.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from avalanche.training.storage_policy import HerdingSelectionStrategy

from ...errors import FyiError
from ...runtime import derive_seed, make_generator, resolve_device
from .benchmarks import tensor_dataset
from .memory import MemorySource, register_memory


def _class_positions(y: torch.Tensor, c: int, per_class: int) -> torch.Tensor:
    idx = (y == c).nonzero().flatten()
    if idx.numel() < per_class:
        raise FyiError(f"class {c} has only {idx.numel()} training images in this experience, cannot keep "
                       f"{per_class}; use --ipc {idx.numel()} or less")
    return idx


@register_memory("native")
class NativeMemory(MemorySource):
    """The strategy's own memory (ER-ACE's class-balanced reservoir buffer, filling all ``mem_size`` slots).

    Nothing is selected here: the strategy keeps the Avalanche buffer it was
    published with, which is what a reproduction of its baseline needs.
    """

    kind = "native"
    needs_data = False
    native = True

    @classmethod
    def from_spec(cls, spec, opts):
        return cls()

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        raise FyiError("the native memory is the strategy's own buffer; use --memory native with --strategy er-ace")


@register_memory("random")
class RandomSelection(MemorySource):
    """Class-balanced random real images (each class's own seeded stream)."""

    kind = "random"

    @classmethod
    def from_spec(cls, spec, opts):
        return cls(seed=opts.seed)

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        picks = []
        for c in classes:
            idx = _class_positions(y, c, per_class)
            g = make_generator(derive_seed(self.seed, "cl-random", c))
            picks.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
        picks = torch.cat(picks)
        return x[picks].clone(), y[picks].clone()

    def describe(self) -> dict:
        return {"kind": self.kind, "seed": self.seed}


class _Embedder(torch.nn.Module):
    """``model.embed`` as a module, so that Avalanche's feature extractor can hook its output (layer ``""``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.embed(x).flatten(1)


class FirstKHerding(HerdingSelectionStrategy):
    """Avalanche's herding selection, stopped after the ``k`` images a memory keeps.

    Avalanche ranks every image of a class (``n`` greedy steps over ``n``
    candidates, minutes for CIFAR's 5,000 images per class); a memory needs only
    the first ``k``.  The first ``k`` indices are the same greedy choices; the
    others follow unranked, in their original order.
    """

    def __init__(self, model, layer_name: str, k: int):
        super().__init__(model, layer_name)
        self.k = int(k)

    def make_sorted_indices_from_features(self, features: torch.Tensor) -> list[int]:
        n = features.shape[0]
        center = features.mean(dim=0)
        running = torch.zeros_like(center)
        taken = torch.zeros(n, dtype=torch.bool, device=features.device)
        picks: list[int] = []
        for i in range(min(self.k, n)):
            candidates = running * i / (i + 1) + features / (i + 1)
            dist = (candidates - center).pow(2).sum(dim=1).masked_fill(taken, float("inf"))
            j = int(dist.argmin())
            picks.append(j)
            taken[j] = True
            running = candidates[j]
        return picks + torch.nonzero(~taken).flatten().tolist()


@register_memory("herding")
class HerdingSelection(MemorySource):
    """Herding (iCaRL) with Avalanche's ``HerdingSelectionStrategy`` on ``model.embed`` features.

    ``model``: the network whose embedding is used (in the replay protocol, the
    learner itself, as in iCaRL).  Without one, a fresh ``arch`` network is
    trained for ``feature_epochs`` on the experience's own data (its classes
    only) and used for the selection (``feature_epochs=0``: random network).
    """

    kind = "herding"

    @classmethod
    def from_spec(cls, spec, opts):
        return cls(opts.model, arch=opts.arch, feature_epochs=opts.herding_epochs, seed=opts.seed,
                   device=opts.device, info=opts.info)

    def __init__(self, model: torch.nn.Module | None = None, *, arch: str = "convnet", feature_epochs: int = 1,
                 seed: int = 0, device="auto", batch_size: int = 256, info=None):
        self.model = model
        self.arch, self.feature_epochs, self.seed = arch, int(feature_epochs), int(seed)
        self.device, self.batch_size, self.info = device, int(batch_size), info

    def _feature_net(self, classes, x, y, device):
        from ...evaluate import EvalConfig, train_network
        from ...networks import create_model

        remap = {c: i for i, c in enumerate(classes)}
        keep = torch.isin(y, torch.tensor(list(classes)))
        xs, ys = x[keep], torch.tensor([remap[int(v)] for v in y[keep].tolist()], dtype=torch.long)
        net = create_model(self.arch, channels=x.shape[1], num_classes=len(classes), image_size=x.shape[-1],
                           seed=derive_seed(self.seed, "cl-herding-net", *classes))
        if self.feature_epochs > 0:
            train_network(net, xs, ys, EvalConfig(epochs=self.feature_epochs, dsa=False), lr=0.01,
                          generator=make_generator(derive_seed(self.seed, "cl-herding-train", *classes)),
                          device=device)
        return net.to(device)

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        device = resolve_device(getattr(agent_state, "device", None) or self.device)
        net = self.model if self.model is not None else self._feature_net(classes, x, y, device)
        was_training = net.training
        state = SimpleNamespace(device=device, eval_mb_size=self.batch_size)
        herding = FirstKHerding(_Embedder(net), "", k=per_class)
        picks = []
        try:
            for c in classes:
                idx = _class_positions(y, c, per_class)
                order = herding.make_sorted_indices(strategy=state, data=tensor_dataset(x[idx], y[idx]))
                picks.append(idx[torch.as_tensor(list(order), dtype=torch.long)[:per_class]])
        finally:
            net.train(was_training)
        picks = torch.cat(picks)
        return x[picks].clone(), y[picks].clone()

    def describe(self) -> dict:
        return {"kind": self.kind, "features": "learner" if self.model is not None else self.arch,
                "feature_epochs": None if self.model is not None else self.feature_epochs, "seed": self.seed,
                "selection": "avalanche.training.storage_policy.HerdingSelectionStrategy (first k)"}


@register_memory("file")
class FromSynset(MemorySource):
    """Mode (a): a synthetic-set file (or :class:`~fyi_apps.synset.SyntheticSet`) supplies each new class's images.

    The first ``per_class`` images of the class, in file order, of the decoded set.
    The set was made offline, before the stream: legitimate in class-incremental
    learning when each class's images depend only on that class's training
    data (DM, DM+FYI, random and herding subsets of a per-class network), since
    each class's data is seen in one experience only.
    """

    kind = "file"
    needs_data = False

    @classmethod
    def from_spec(cls, spec, opts):
        return cls(spec.path, info=opts.info, ipc=opts.ipc)

    def __init__(self, synset, info=None, ipc: int | None = None):
        from ...synset import SyntheticSet, load_synset

        if not isinstance(synset, SyntheticSet):
            path = Path(synset)
            if not path.exists():
                raise FyiError(f"synthetic-set file {path} does not exist; check the path")
            self.path = str(path)
            synset = load_synset(path)
        else:
            self.path = None
        name = self.path or f"{synset.method} set"
        if synset.config.get("zca"):
            raise FyiError(f"synthetic set {name} lives in ZCA-whitened space, not the benchmark's normalised "
                           "images; distil without ZCA for a replay memory")
        info = getattr(info, "info", info)
        if info is not None:
            if (synset.channels, synset.image_size) != (info.channels, info.image_size):
                raise FyiError(f"synthetic set {name} has {synset.channels}x{synset.image_size}px images but "
                               f"{info.name} has {info.channels}x{info.image_size}px; use a set of the benchmark's dataset")
            if any(abs(a - b) > 0.02 for a, b in zip(synset.mean + synset.std, list(info.mean) + list(info.std))):
                raise FyiError(f"synthetic set {name} is normalised with mean {synset.mean} / std {synset.std} but "
                               f"{info.name} uses {list(info.mean)} / {list(info.std)}; use a set of the benchmark's dataset")
        self.synset = synset
        self.images, self.labels = (t.detach().cpu() for t in synset.decoded())
        if ipc is not None:  # checked now, not after the first experience has trained
            counts = torch.bincount(self.labels.long(), minlength=int(self.labels.max()) + 1 if len(self.labels) else 0)
            short = [c for c, n in enumerate(counts.tolist()) if n < ipc]
            if short or len(counts) == 0:
                have = int(counts.min()) if len(counts) else 0
                raise FyiError(f"synthetic set {name} has {have} image(s) of class {short[0] if short else 0} but the "
                               f"memory keeps {ipc} per class; use ipc={have} (--ipc {have}) or a set with more")

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        imgs, labs = [], []
        for c in classes:
            idx = (self.labels == c).nonzero().flatten()
            if idx.numel() < per_class:
                raise FyiError(f"synthetic set {self.path or self.synset.method} has {idx.numel()} images of class {c} "
                               f"but the memory keeps {per_class} per class; use --ipc {idx.numel()} or a larger set")
            imgs.append(self.images[idx[:per_class]].float())
            labs.append(self.labels[idx[:per_class]].clone())
        return torch.cat(imgs), torch.cat(labs)

    def describe(self) -> dict:
        s = self.synset
        return {"kind": self.kind, "path": self.path, "method": s.method, "fyi": s.fyi, "ipc": s.ipc,
                "dataset": s.dataset, "iterations": s.extra.get("iterations_done"),
                "made": "offline, before the stream (first ipc images of each class in the file)"}
