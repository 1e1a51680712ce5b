"""Training-time augmentation for the stream strategies (``--stream-aug``), as an Avalanche plugin.

GDumb trains on the memory with DSA (``--dsa-mode``); the stream strategies
(Naive + ``ReplayPlugin``, ER-ACE, ...) train on the experience's images and
the replayed memory images, without augmentation by default.  CL code on
CIFAR usually flips the training images; ``--stream-aug`` does that here, in
one plugin that works with any Avalanche strategy:

* ``none``: no augmentation (the default);
* ``flip``: each image is mirrored horizontally with probability 0.5;
* ``dsa``: one DSA operation per minibatch, parameters per image (the original DSA);
* ``dsa-fyi``: a random flip, then one DSA operation (the FYI code's DSA).

The plugin augments the minibatch just before the forward pass: the stream
and replayed images that Naive's ``ReplayPlugin`` concatenates, and ER-ACE's
separately drawn memory batch (``mb_buffer_x``).  Random numbers come from
its own seeded generator, so a run is repeatable.

Drop it into your own strategy::

    plugin = StreamAugmentPlugin("flip", seed=0)
    strategy = Naive(..., plugins=[ReplayPlugin(...), plugin])
"""
from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin

from ...augment import DSA, DEFAULT_STRATEGY
from ...errors import FyiError

#: ``--stream-aug`` name -> (DSA strategy, DSA mode); ``none`` has no entry
STREAM_AUGS = {"flip": ("flip", "single"), "dsa": (DEFAULT_STRATEGY, "single"), "dsa-fyi": (DEFAULT_STRATEGY, "fyi")}
STREAM_AUG_NAMES = ("none", *STREAM_AUGS)


class StreamAugmentPlugin(SupervisedPlugin):
    """Augments every training minibatch of an Avalanche strategy (per image, differentiable DSA ops)."""

    def __init__(self, name: str = "flip", seed: int = 0):
        super().__init__()
        if name not in STREAM_AUGS:
            raise FyiError(f"unknown stream augmentation {name!r}; use one of {', '.join(STREAM_AUGS)} "
                           "(or no plugin for none)")
        self.name = name
        self.dsa = DSA(*STREAM_AUGS[name])
        self.generator = torch.Generator().manual_seed(int(seed) % (2**63))
        self.batches = 0  # minibatches augmented (stream and memory parts count once)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        params = self.dsa.sample(x.shape[0], tuple(x.shape[-2:]), x.device, self.generator, siamese=False)
        return self.dsa.apply(x, params)

    def before_forward(self, strategy, **kwargs):
        mb = strategy.mbatch
        strategy.mbatch = [self._augment(mb[0]), *mb[1:]]
        # ER-ACE: the memory batch of this iteration, drawn just before this hook (only while it replays)
        if getattr(strategy, "replay_loader", None) is not None and isinstance(getattr(strategy, "mb_buffer_x", None),
                                                                            torch.Tensor):
            strategy.mb_buffer_x = self._augment(strategy.mb_buffer_x)
        self.batches += 1


def stream_augment_plugins(name: str, seed: int) -> list:
    """The plugins of ``--stream-aug name`` (none: no plugin)."""
    return [] if name == "none" else [StreamAugmentPlugin(name, seed)]
