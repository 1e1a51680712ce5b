"""FTD: Minimizing the Accumulated Trajectory Error to Improve Dataset Distillation (Du et al., CVPR 2023).

FTD is MTT (:mod:`.mtt`) with two changes:

* the experts are *flat*: trained with GSAM (sharpness-aware minimisation with
  surrogate-gap guidance; ``fyi experts --flat``: rho 0.01, alpha 0.3,
  adaptive, as in FTD's buffer script), so that the student's accumulated
  error along the trajectory hurts less;
* the output is an exponential moving average of the synthetic images,
  ``ema <- decay * ema + (1 - decay) * S`` after every image update
  (``ema_decay`` 0.9995 as in FTD's run scripts; 0.999 is the script's
  argparse default), starting from the initial images.

The learned learning rate, FYI and everything else are MTT's.  Presets: FTD's
hyper-parameter table (``presets.TRAJECTORY_TABLE``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import option, register_method
from .mtt import MTT, MTTOptions


@dataclass(frozen=True)
class FTDOptions(MTTOptions):
    ema_decay: float = option(0.9995, min=0.0, max=1.0, max_open=True, doc="decay of the images' moving average")


@register_method
class FTD(MTT):
    name = "ftd"
    Options = FTDOptions
    wants_flat = True

    def setup(self, images: torch.nn.Parameter, labels: torch.Tensor) -> None:
        super().setup(images, labels)
        self.decay = self.opts.ema_decay
        self.ema = images.detach().clone()

    def after_step(self) -> None:
        with torch.no_grad():
            self.ema.lerp_(self.images.detach(), 1.0 - self.decay)

    def final_images(self) -> torch.Tensor:
        return self.ema

    def state_dict(self) -> dict:
        return {**super().state_dict(), "ema": self.ema.cpu()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.ema.copy_(state["ema"].to(self.ema.device))
