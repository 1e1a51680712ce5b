"""CL protocols: GDumb-style (a fresh network on the memory at every step, the DM paper's) and stream training.

Each protocol is one class registered with :func:`~.registry.register_protocol`:

* ``gdumb`` (:class:`GDumbProtocol`): at every step the memory is filled with the new
  classes and a network is trained from scratch on the memory only, with the
  fyi-apps evaluation protocol, then tested on every seen class;
* ``dm-paper`` (:class:`DMPaper`): GDumb with the DM paper's settings
  (CL_DM.py): Split CIFAR-100 in 5 and 10 steps, 20 images per class, 1,000
  epochs, class orders ``np.random.seed(k).permutation(100)``, k = 0..4;
* ``replay`` (:class:`StreamReplay`): an Avalanche strategy (``--strategy``:
  Naive + ``ReplayPlugin``, ER-ACE, EWC, LwF, see :mod:`.strategies`) trains on
  the stream and replays from the memory, measured by Avalanche's ``EvaluationPlugin``.

All return the same record: Avalanche metric names per step, summarized by
:func:`summarize`.  Adding a protocol::

    @register_protocol("my-protocol")
    class MyProtocol(CLProtocol):
        def run(self, cfg, bench, memory, *, model, seed, device, progress):
            ...  # {"protocol": ..., "history": [metrics per step], "memory": [...], "train": {...}}
"""
from __future__ import annotations

import dataclasses
import re
import time
from types import SimpleNamespace
from typing import Sequence

import torch

from ...deprecated import module_getattr
from ...errors import FyiError
from ...runtime import derive_seed, make_generator, resolve_device
from .augment import stream_augment_plugins
from .benchmarks import CLBenchmark
from .policy import ReplayMemory
from .registry import PROTOCOLS, register_protocol
from .strategies import STRATEGIES, make_strategy, seeded_global_rng


# Avalanche's metric names (class-incremental streams carry no task part in the name)
def _key_acc_exp(j: int) -> str:
    return f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"


def _key_forget_exp(j: int) -> str:
    return f"ExperienceForgetting/eval_phase/test_stream/Exp{j:03d}"


KEY_STREAM_ACC = "Top1_Acc_Stream/eval_phase/test_stream"
KEY_STREAM_FORGET = "StreamForgetting/eval_phase/test_stream"


def _scalars(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = float(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def run_gdumb(
    bench: CLBenchmark,
    memory: ReplayMemory,
    *,
    arch: str = "convnet",
    cfg=None,
    seed: int = 0,
    device="auto",
    progress: bool = False,
) -> dict:
    """Protocol 1 (the DM paper's): after each experience, fill the memory, train a fresh network on it only.

    The network (``arch``, one output per class of the dataset) is trained with
    the fyi-apps evaluation protocol (``cfg``: :class:`fyi_apps.evaluate.EvalConfig`,
    DSA by default) and tested on each seen experience's test data.  The record
    uses Avalanche's metric names; forgetting of experience ``j`` is its accuracy
    right after the step that added it minus its current accuracy, as in
    Avalanche's ``ExperienceForgetting``; stream forgetting averages it over the
    experiences trained before the current one.
    """
    from ...runtime import progress_bar as tqdm

    from ...evaluate import EvalConfig, train_network
    from ...training import test_accuracy
    from ...networks import create_model

    cfg = cfg or EvalConfig(epochs=300)
    device = resolve_device(device)
    info = bench.dataset.info
    lr = cfg.resolved_lr()
    state = SimpleNamespace(model=None, device=device, eval_mb_size=cfg.test_batch_size, experience=None)
    history, initial, states = [], {}, []
    bar = tqdm(list(enumerate(bench.train_stream)), desc=f"gdumb {bench.name}", disable=not progress, leave=False,
               dynamic_ncols=True)
    for i, exp in bar:
        state.experience = exp
        t0 = time.perf_counter()
        memory.post_adapt(state, exp)
        t_mem = time.perf_counter() - t0
        x, y = memory.images, memory.labels
        net = create_model(arch, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
                           seed=derive_seed(seed, "cl-gdumb-net", i))
        g = make_generator(derive_seed(seed, "cl-gdumb-train", i))
        t1 = time.perf_counter()
        train_network(net, x, y, cfg, lr=lr, generator=g, device=device, desc=f"step {i}")
        t_train = time.perf_counter() - t1
        metrics, correct, total, forgets = {}, 0, 0, []
        for j in range(i + 1):
            mask = torch.isin(bench.test_labels, torch.tensor(bench.experience_classes[j]))
            xt, yt = bench.test_images[mask], bench.test_labels[mask]
            acc = test_accuracy(net, xt, yt, device=device, batch_size=cfg.test_batch_size, bf16=cfg.bf16)
            metrics[_key_acc_exp(j)] = acc
            correct += acc * yt.numel()
            total += yt.numel()
            if j == i:
                initial[j] = acc
            else:
                f = initial[j] - acc
                metrics[_key_forget_exp(j)] = f
                forgets.append(f)
        metrics[KEY_STREAM_ACC] = correct / total
        metrics[KEY_STREAM_FORGET] = sum(forgets) / len(forgets) if forgets else 0.0
        history.append(metrics)
        states.append({"size": len(memory), "class_counts": {str(c): n for c, n in memory.class_counts().items()},
                       "seconds_memory": t_mem, "seconds_train": t_train})
        bar.set_postfix(acc=f"{100 * metrics[KEY_STREAM_ACC]:.1f}")
    return {"protocol": "gdumb", "history": history, "memory": states,
            "train": {"arch": arch, "eval_config": dataclasses.asdict(cfg), "lr": lr}}


def run_replay(
    bench: CLBenchmark,
    memory: ReplayMemory,
    *,
    model: torch.nn.Module | None = None,
    strategy: str = "naive",
    arch: str = "convnet",
    epochs: int = 1,
    lr: float = 0.01,
    batch_size: int = 128,
    seed: int = 0,
    device="auto",
    extra_plugins: Sequence = (),
    progress: bool = False,
    batch_size_mem: int | None = None,
    stream_aug: str = "none",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    drop_last: bool = False,
    eval_batch_size: int | None = None,
) -> dict:
    """Protocol 2: an Avalanche strategy trains on each experience's stream plus the memory (``ReplayPlugin``, ER-ACE).

    After each experience the model is evaluated on the test data of every seen
    experience with Avalanche's ``EvaluationPlugin`` (accuracy and forgetting,
    per experience and stream).  ``model`` defaults to a fresh ``arch`` with one
    output per class (pass the same model to :func:`~.memory.make_memory` for herding).
    ``stream_aug``: augmentation of the training minibatches (:mod:`.augment`:
    none, flip, dsa, dsa-fyi), seeded from ``seed``.
    """
    from ...runtime import progress_bar as tqdm

    from ...networks import create_model

    device = resolve_device(device)
    info = bench.dataset.info
    if model is None:
        model = create_model(arch, channels=info.channels, num_classes=info.num_classes,
                             image_size=info.image_size, seed=derive_seed(seed, "cl-replay-net"))
    black = -torch.tensor(info.mean) / torch.tensor(info.std)  # crop-flip pads with black pixels
    plugins = [*stream_augment_plugins(stream_aug, derive_seed(seed, "cl-stream-aug"), black), *extra_plugins]
    strat = make_strategy(strategy, model, memory, lr=lr, epochs=epochs, batch_size=batch_size, device=device,
                          extra_plugins=plugins, batch_size_mem=batch_size_mem, momentum=momentum,
                          weight_decay=weight_decay, eval_batch_size=eval_batch_size)
    history, states = [], []
    bar = tqdm(list(enumerate(bench.train_stream)), desc=f"{strategy}+replay {bench.name}", disable=not progress,
               leave=False, dynamic_ncols=True)
    with seeded_global_rng(derive_seed(seed, "cl-replay-loader"), device):
        for i, exp in bar:
            t0 = time.perf_counter()
            strat.train(exp, eval_streams=[], **({"drop_last": True} if drop_last else {}))
            t_train = time.perf_counter() - t0
            metrics = _scalars(strat.eval(bench.test_stream[: i + 1]))
            history.append(metrics)
            states.append({**_memory_state(memory, tuple(bench.test_images.shape[1:])), "seconds_train": t_train})
            bar.set_postfix(acc=f"{100 * metrics.get(KEY_STREAM_ACC, float('nan')):.1f}")
    return {"protocol": "replay", "history": history, "memory": states,
            "train": {"strategy": strategy, "arch": arch, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                      "optimizer": f"SGD momentum {momentum:g} wd {weight_decay:g}",
                      **({"drop_last": True} if drop_last else {}),
                      **({"batch_size_mem": batch_size_mem} if batch_size_mem is not None else {}),
                      **({"stream_aug": stream_aug} if stream_aug != "none" else {})}}


def _memory_state(memory, image_shape: Sequence[int] = ()) -> dict:
    """Size, per-class counts and storage cost of the memory (the strategy's own for ``native``).

    ``bytes``: the images as stored here (float32); ``bytes_uint8``: the same images exported as 8-bit pixels
    (one byte per value, the size a real-image memory needs).
    """
    import math

    native = getattr(memory, "native_policy", None)
    if native is None:
        counts = {str(c): n for c, n in memory.class_counts().items()}
    else:
        groups = getattr(native, "buffer_groups", {}) or {}
        counts = {str(c): len(g.buffer) for c, g in sorted(groups.items())}
    size = sum(counts.values())
    values = size * math.prod(image_shape) if image_shape else 0
    out = {"size": size, "class_counts": counts, "bytes": 4 * values, "bytes_uint8": values}
    if native is not None:
        out["policy"] = type(native).__name__
    return out


def summarize(record: dict, experience_classes: Sequence[Sequence[int]]) -> dict:
    """Accuracy matrix, stream accuracy per step, forgetting, from a run's Avalanche-named metrics."""
    n = len(experience_classes)
    hist = record["history"]
    acc = [[None] * n for _ in hist]
    forget = [[None] * n for _ in hist]
    pat_acc = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream(?:/Task\d+)?/Exp(\d+)$")
    pat_forget = re.compile(r"^ExperienceForgetting/eval_phase/test_stream(?:/Task\d+)?/Exp(\d+)$")
    pat_stream_acc = re.compile(r"^Top1_Acc_Stream/eval_phase/test_stream(?:/Task\d+)?$")
    stream_acc, stream_forget = [], []
    for i, m in enumerate(hist):
        for k, v in m.items():
            if (g := pat_acc.match(k)) and int(g.group(1)) < n:
                acc[i][int(g.group(1))] = v
            elif (g := pat_forget.match(k)) and int(g.group(1)) < n:
                forget[i][int(g.group(1))] = v
        stream_acc.append(next((v for k, v in m.items() if pat_stream_acc.match(k)), None))
        stream_forget.append(m.get(KEY_STREAM_FORGET))
    classes_seen = [sum(len(c) for c in experience_classes[: i + 1]) for i in range(len(hist))]
    valid = [a for a in stream_acc if a is not None]
    return {
        "classes_seen": classes_seen,
        "stream_acc": stream_acc,
        "stream_forgetting": stream_forget,
        "acc_matrix": acc,
        "forgetting_matrix": forget,
        "final_acc": stream_acc[-1] if stream_acc else None,
        "final_forgetting": stream_forget[-1] if stream_forget else None,
        "avg_incremental_acc": sum(valid) / len(valid) if valid else None,
    }


# --------------------------------------------------------------------------- #
# the registered protocols
# --------------------------------------------------------------------------- #
class CLProtocol:
    """A continual-learning protocol: a way of training and testing with a replay memory.

    ``defaults``: :class:`~.experiment.CLConfig` fields this protocol presets
    (the CLI applies them to options the user did not give); ``experiences``:
    the step counts the CLI runs by default (``None``: the benchmark's).
    ``uses_learner``: herding memories take their features from the learner.
    ``ignores``: :class:`~.config.CLConfig` fields it does not read (``fyi cl`` refuses a flag that sets one).
    """

    name = "protocol"
    defaults: dict = {}
    experiences: tuple[int, ...] | None = None
    uses_learner = False
    ignores: tuple[str, ...] = ()

    def check(self, cfg) -> None:
        """Refuse a config this protocol cannot run (before anything is computed)."""

    def make_learner(self, cfg, info, seed: int):
        return None

    def run(self, cfg, bench: CLBenchmark, memory: ReplayMemory, *, model, seed: int, device,
            progress: bool) -> dict:
        raise NotImplementedError


@register_protocol("gdumb")
class GDumbProtocol(CLProtocol):
    """GDumb (Prabhu et al., 2020) with our memory: a fresh network trained on the memory only at every step."""

    ignores = ("strategy", "train_epochs", "batch_size", "batch_size_mem")  # the stream strategies' training

    def check(self, cfg) -> None:
        if getattr(cfg, "stream_aug", "none") != "none":
            raise FyiError(f"--stream-aug {cfg.stream_aug} augments the stream strategies' minibatches; the "
                           f"{self.name} protocol trains on the memory with DSA: use --dsa-mode (single, fyi, all)")

    def run(self, cfg, bench, memory, *, model, seed, device, progress):
        from ...evaluate import EvalConfig

        return run_gdumb(bench, memory, arch=cfg.arch, seed=seed, device=device, progress=progress,
                         cfg=EvalConfig(epochs=cfg.epochs, dsa=cfg.dsa, dsa_mode=cfg.dsa_mode,
                                        lr=cfg.lr, bf16=cfg.bf16))


@register_protocol("dm-paper")
class DMPaper(GDumbProtocol):
    defaults = {"benchmark": "split-cifar100", "ipc": 20, "epochs": 1000, "lr": 0.01, "dsa": True,
                "seeds": [0, 1, 2, 3, 4], "order_rule": "numpy"}
    experiences = (5, 10)


@register_protocol("replay", "stream")
class StreamReplay(CLProtocol):
    uses_learner = True
    ignores = ("epochs", "dsa", "herding_epochs")  # GDumb's training on the memory; herding uses the learner

    def check(self, cfg) -> None:
        STRATEGIES.canonical(cfg.strategy)
        if getattr(cfg, "dsa_mode", "single") != "single":
            raise FyiError(f"--dsa-mode {cfg.dsa_mode} sets GDumb's DSA on the memory; the stream strategies "
                           "augment with --stream-aug (none, flip, dsa, dsa-fyi)")

    def make_learner(self, cfg, info, seed):
        from ...networks import create_model

        return create_model(cfg.arch, channels=info.channels, num_classes=info.num_classes,
                            image_size=info.image_size, seed=derive_seed(seed, "cl-replay-net"))

    def run(self, cfg, bench, memory, *, model, seed, device, progress):
        bsm = cfg.batch_size_mem
        if bsm is None and STRATEGIES.get(cfg.strategy).fills_before_training:
            # ER-ACE replays only once the memory holds batch_size_mem images: from the second experience on
            per = len(bench.experience_classes[0])
            bsm = min(cfg.batch_size, 2 * per * cfg.ipc)
        return run_replay(bench, memory, model=model, strategy=STRATEGIES.canonical(cfg.strategy), arch=cfg.arch,
                          epochs=cfg.train_epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, device=device,
                          progress=progress, batch_size_mem=bsm, stream_aug=getattr(cfg, "stream_aug", "none"),
                          momentum=cfg.momentum, weight_decay=cfg.weight_decay, drop_last=cfg.drop_last,
                          eval_batch_size=cfg.eval_batch_size)


@register_protocol("er-ace-avalanche", "avalanche-er-ace")
class AvalancheERACE(StreamReplay):
    """Avalanche's ER-ACE baseline on Split CIFAR-10 (continual-learning-baselines, ``split_cifar10/er_ace.py``).

    Its settings: 5 experiences in the fixed class order 0..9, 5 % of each
    experience held out (``benchmark_with_validation_stream(.., 0.05)``),
    Avalanche's SlimResNet18 with an ``IncrementalClassifier``, plain SGD lr 0.1
    (no momentum, no weight decay), minibatches of 10 stream + 10 replayed images,
    one epoch, ``drop_last``, a memory of 1,000 images (ER-ACE's own
    class-balanced buffer: ``--memory native``; other memories hold 100 per
    class), evaluation minibatches of 64, and Avalanche's default CIFAR-10
    training transform (random crop with 4 px padding + horizontal flip; the
    script passes no transform of its own).  Target (``tests/target_results.csv``):
    final average accuracy over the test stream 0.45 +- 0.03.
    """

    defaults = {"benchmark": "split-cifar10", "memories": ["native"], "ipc": 100, "seeds": [0, 1, 2, 3, 4],
                "arch": "slimresnet18:incremental=True", "strategy": "er-ace", "train_epochs": 1, "lr": 0.1,
                "batch_size": 10, "batch_size_mem": 10, "momentum": 0.0, "weight_decay": 0.0, "holdout": 0.05,
                "drop_last": True, "eval_batch_size": 64, "order_rule": "fixed", "stream_aug": "crop-flip"}


def list_protocols(pattern: str | None = None) -> list[str]:
    """The registered CL protocols; ``pattern``: only those matching a wildcard (``"dm*"``)."""
    return PROTOCOLS.names(pattern)


__getattr__ = module_getattr(__name__, globals().__getitem__)  # the old names warn (fyi_apps.deprecated)
