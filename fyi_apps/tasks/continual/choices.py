"""The choices of continual-learning options, in one light module (the CLI imports it without Avalanche)."""
from __future__ import annotations

#: class-order rules: ``fyi`` (a seeded torch permutation), ``numpy`` (the DM paper's CL_DM.py) and
#: ``fixed`` (0, 1, ..., n-1 whatever the seed: Avalanche's CL baselines' ``fixed_class_order``)
ORDER_RULES = ("fyi", "numpy", "fixed")

#: ``--stream-aug`` names (see :mod:`.augment`)
STREAM_AUG_NAMES = ("none", "flip", "dsa", "dsa-fyi", "crop-flip")
