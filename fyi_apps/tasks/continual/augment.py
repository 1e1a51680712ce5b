"""Training-time augmentation for the stream strategies (``--stream-aug``), as an Avalanche plugin.

GDumb trains on the memory with DSA (``--dsa-mode``); the stream strategies
(Naive + ``ReplayPlugin``, ER-ACE, ...) train on the experience's images and
the replayed memory images, without augmentation by default.  CL code on
CIFAR usually flips the training images; ``--stream-aug`` does that here, in
one plugin that works with any Avalanche strategy:

* ``none``: no augmentation (the default);
* ``flip``: each image is mirrored horizontally with probability 0.5;
* ``dsa``: one DSA operation per minibatch, parameters per image (the original DSA);
* ``dsa-fyi``: a random flip, then one DSA operation (the FYI code's DSA);
* ``crop-flip``: Avalanche's default CIFAR training transform (``RandomCrop(32,
  padding=4)`` then ``RandomHorizontalFlip``) on normalised tensors: the padding
  is black (0 before normalisation), as torchvision pads the raw image.

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
from .choices import STREAM_AUG_NAMES  # noqa: E402  (none, the DSA-based ones, crop-flip)


def crop_flip(x: torch.Tensor, generator: torch.Generator, fill: torch.Tensor | None = None,
              pad: int = 4) -> torch.Tensor:
    """Per image: a random ``pad``-padded crop of the same size, then a horizontal flip with probability 0.5.

    ``fill`` (one value per channel) is the padding: the normalised value of a
    black pixel, ``-mean / std`` (zeros if None).
    """
    n, c, h, w = x.shape
    fill = torch.zeros(c, dtype=x.dtype) if fill is None else fill.to(dtype=x.dtype)
    padded = fill.to(x.device).view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad:pad + h, pad:pad + w] = x
    i = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    j = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    out = torch.stack([padded[k, :, i[k]:i[k] + h, j[k]:j[k] + w] for k in range(n)])
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip.view(n, 1, 1, 1), out.flip(-1), out)


class StreamAugmentPlugin(SupervisedPlugin):
    """Augments every training minibatch of an Avalanche strategy (per image, differentiable DSA ops)."""

    def __init__(self, name: str = "flip", seed: int = 0, fill: torch.Tensor | None = None):
        super().__init__()
        if name not in STREAM_AUGS and name != "crop-flip":
            raise FyiError(f"unknown stream augmentation {name!r}; use one of {', '.join(STREAM_AUG_NAMES[1:])} "
                           "(or no plugin for none)")
        self.name = name
        self.fill = fill
        self.dsa = DSA(*STREAM_AUGS[name]) if name in STREAM_AUGS else None
        self.generator = torch.Generator().manual_seed(int(seed) % (2**63))
        self.batches = 0  # minibatches augmented (stream and memory parts count once)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.dsa is None:
            return crop_flip(x, self.generator, self.fill)
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


def stream_augment_plugins(name: str, seed: int, fill: torch.Tensor | None = None) -> list:
    """The plugins of ``--stream-aug name`` (none: no plugin); ``fill``: crop-flip's padding value per channel."""
    return [] if name == "none" else [StreamAugmentPlugin(name, seed, fill)]
