"""Avalanche strategies that train on the stream, each using a replay memory (``--strategy``).

One registered class per strategy builds the Avalanche object:

* ``naive``, ``ewc``, ``lwf``: the Avalanche strategy plus
  ``ReplayPlugin(mem_size, storage_policy=memory)``; the plugin fills the
  memory after each training experience and draws every minibatch half from
  the experience, half from the memory;
* ``er-ace``: Avalanche's ``ER_ACE`` (Caccia et al., asymmetric cross-entropy)
  with the memory as its ``storage_policy`` in place of its class-balanced
  buffer; ER-ACE adds the experience's new classes to the memory *before*
  training on it and replays ``batch_size_mem`` memory images per minibatch.

All use SGD (momentum 0.9, weight decay 5e-4), cross-entropy and an
``EvaluationPlugin`` with accuracy and forgetting per experience and stream
(no loggers: results come back from ``strategy.eval``).  Adding one::

    @register_strategy("my-strategy")
    class MyStrategy(StreamStrategy):
        def build(self, common, memory, batch_size_mem):
            return MyAvalancheStrategy(**common, plugins=[ReplayPlugin(...), *common.pop("plugins")])
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Sequence

import torch

from ...errors import FyiError
from ...runtime import resolve_device
from .registry import STRATEGIES, register_strategy


class StreamStrategy:
    """Builds one Avalanche strategy around a replay memory.

    ``build(common, memory, batch_size_mem)``: ``common`` holds the keyword
    arguments every Avalanche ``SupervisedTemplate`` takes (model, optimizer,
    criterion, train/eval minibatch sizes, epochs, device, plugins, evaluator).
    """

    name = "strategy"
    #: whether the strategy fills the memory itself before training an experience (ER-ACE) or after (ReplayPlugin)
    fills_before_training = False

    def __init__(self, **params):
        self.params = params

    def build(self, common: dict, memory, batch_size_mem: int | None):
        raise NotImplementedError

    @staticmethod
    def replay_plugin(memory, batch_size_mem):
        from avalanche.training.plugins import ReplayPlugin

        return ReplayPlugin(mem_size=memory.max_size, batch_size_mem=batch_size_mem, storage_policy=memory)


@register_strategy("naive")
class NaiveReplay(StreamStrategy):
    def build(self, common, memory, batch_size_mem):
        from avalanche.training.supervised import Naive

        common["plugins"] = [self.replay_plugin(memory, batch_size_mem), *common["plugins"]]
        return Naive(**common)


@register_strategy("ewc")
class EWCReplay(StreamStrategy):
    def build(self, common, memory, batch_size_mem):
        from avalanche.training.supervised import EWC

        common["plugins"] = [self.replay_plugin(memory, batch_size_mem), *common["plugins"]]
        return EWC(ewc_lambda=self.params.get("ewc_lambda", 1.0), **common)


@register_strategy("lwf")
class LwFReplay(StreamStrategy):
    def build(self, common, memory, batch_size_mem):
        from avalanche.training.supervised import LwF

        common["plugins"] = [self.replay_plugin(memory, batch_size_mem), *common["plugins"]]
        return LwF(alpha=self.params.get("lwf_alpha", 1.0), temperature=self.params.get("lwf_temperature", 2.0),
                   **common)


@register_strategy("er-ace", "erace")  # er_ace too: "_" == "-"
class ERACE(StreamStrategy):
    fills_before_training = True

    def build(self, common, memory, batch_size_mem):
        from avalanche.training.supervised import ER_ACE

        bsm = int(batch_size_mem or common["train_mb_size"])
        strat = ER_ACE(mem_size=memory.max_size, batch_size_mem=bsm, **common)
        if getattr(memory.source, "native", False):
            policy = strat.storage_policy  # ER-ACE's own class-balanced buffer, kept
            # ER_ACE calls the buffer's update(), deprecated in Avalanche 0.6 with a warning per experience that
            # no filter silences; update() is post_adapt(strategy, strategy.experience), called here directly
            policy.update = lambda strategy, **kwargs: policy.post_adapt(strategy, strategy.experience)
            memory.native_policy = policy
        else:
            strat.storage_policy = memory  # ER-ACE calls storage_policy.update(strategy) before each experience
        return strat


def list_strategies() -> list[str]:
    return STRATEGIES.names()


@contextlib.contextmanager
def seeded_global_rng(seed: int, device: torch.device):
    """Avalanche's data loaders shuffle with torch's global RNG; run them on a forked, seeded copy.

    The caller's global RNG state is restored on exit (``torch.random.fork_rng``).
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(int(seed) % (2**63))
        if device.type == "cuda":
            torch.cuda.manual_seed(int(seed) % (2**63))
        yield


def make_strategy(name: str, model, memory, *, lr: float = 0.01, epochs: int = 1,
                  batch_size: int = 128, batch_size_mem: int | None = None, device="auto",
                  extra_plugins: Sequence = (), ewc_lambda: float = 1.0, lwf_alpha: float = 1.0,
                  lwf_temperature: float = 2.0, momentum: float = 0.9, weight_decay: float = 5e-4,
                  eval_batch_size: int | None = None):
    """An Avalanche strategy (``naive``, ``ewc``, ``lwf``, ``er-ace``, ...) that replays from ``memory``.

    ``memory``: the replay memory (:class:`~.policy.ReplayMemory`).
    ``batch_size_mem``: memory images per minibatch (ReplayPlugin's default:
    ``batch_size``; ER-ACE replays only once the memory holds that many).
    A memory of kind ``native`` keeps the strategy's own buffer (ER-ACE only).
    """
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.training.plugins import EvaluationPlugin

    builder = STRATEGIES.get(name)(ewc_lambda=ewc_lambda, lwf_alpha=lwf_alpha, lwf_temperature=lwf_temperature)
    if getattr(getattr(memory, "source", None), "native", False) and not isinstance(builder, ERACE):
        raise FyiError(f"the native memory is ER-ACE's own buffer; strategy {name!r} has none: use --strategy er-ace "
                       "or another --memory")
    device = resolve_device(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                     forgetting_metrics(experience=True, stream=True), loggers=[])
    common = dict(model=model, optimizer=opt, criterion=torch.nn.CrossEntropyLoss(), train_mb_size=batch_size,
                  train_epochs=epochs, eval_mb_size=eval_batch_size or max(batch_size, 256), device=device,
                  plugins=list(extra_plugins), evaluator=evaluator)
    return builder.build(common, memory, batch_size_mem)
