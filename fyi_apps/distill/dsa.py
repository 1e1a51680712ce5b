"""DSA: Dataset Condensation with Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021).

DC's gradient matching where the real batch and the synthetic images of a
class pass through the same sampled augmentation (``fyi_apps.augment``), which is
differentiable with respect to the synthetic images; the inner network
training also uses DSA.  Strategy ``color_crop_cutout_flip_scale_rotate``.
"""
from __future__ import annotations

from .base import register_method
from .dc import DC


@register_method
class DSAMethod(DC):
    name = "dsa"
    defaults = {**DC.defaults, "dsa": True}
