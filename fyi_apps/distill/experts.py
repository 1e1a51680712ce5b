"""Expert trajectories for trajectory matching (MTT, FTD): training, storage, loading, resume.

An *expert* is a network of the distillation architecture trained from scratch
on the real training set; its *trajectory* is its parameter vector after every
epoch (epoch 0 = initialisation).  MTT (Cazenavette et al., CVPR 2022) and FTD
(Du et al., CVPR 2023) match short stretches of these trajectories.

Training follows the reference ``buffer.py`` of MTT: SGD with learning rate
``lr_teacher`` 0.01, no momentum, no weight decay, no learning-rate decay,
batch 256, DSA augmentation of every real batch.  ``flat=True`` trains FTD's
*flat* experts with GSAM instead (Zhuang et al., ICLR 2022, as used by FTD's
``buffer_FTD.py``): rho 0.01 (constant), alpha 0.3, adaptive perturbation, the
same SGD underneath (:mod:`.gsam`).  Optional ZCA whitening (``zca=True``) is a
fixed linear transform of the pixels, fitted on the training set (see
:class:`fyi_apps.zca.ZCA`).

Storage (one folder)::

    experts.json                 config, dataset, parameter names/shapes, per-expert stats (older folders: their old name)
    expert_00000.safetensors     tensor "trajectory" [epochs + 1, P] (float32 by default)
    expert_00001.safetensors     ...
    expert_00002.partial.pt      training state of an unfinished expert (resume)
    zca.safetensors              the whitening transform, when zca=True

Each expert is one contiguous tensor, read row by row (``safe_open`` slices),
so distillation keeps only the two parameter vectors it needs in memory.
Every file is written atomically.  Expert ``i`` draws all its randomness from
seeds derived from ``(seed, i)``, so training is resumable expert by expert and
epoch by epoch (after ``kill -9``) and ends with the same tensors as an
uninterrupted run.  Asking for more experts in an existing folder extends it.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..deprecated import module_getattr, old_file
from ..distributed import barrier, locked, rank_world, shard
from ..errors import FyiError
from ..networks import batch_slice
from ..records import load_sealed_torch, save_sealed_torch
from ..runtime import (atomic_path, derive_seed, flush_denormals, make_generator, package_versions, resolve_device,
                       file_sha256, read_sealed_json, write_sealed_json)
from ..training import backward_in_slices, ce_shares, flat_params, normalize_uint8, test_accuracy
from ..zca import ZCA, zca_for_dataset
from .expert_config import DTYPES, ExpertConfig  # the config lives beside its options (re-exported)
from .gsam import BatchNormMomentum, gsam_direction

EXPERTS_FORMAT = 1  # the version of an expert folder's layout (its index's "format")
INDEX = "experts.json"  # the index file of an expert folder; folders made before the rename keep (and read) theirs
OLD_INDEX = old_file(INDEX)
ZCA_FILE = "zca.safetensors"
_DTYPES = {name: getattr(torch, name) for name in DTYPES}


def default_expert_dir(cfg: ExpertConfig, out_dir: str | Path = "fyi-runs") -> Path:
    """``OUT/experts/<dataset>_<arch>[_zca][_flat][_subN]_seed<S>`` (``OUT/buffers/...`` if a run started there)."""
    from ..validate import safe_name

    tags = [safe_name(cfg.dataset) + ("-flipext" if cfg.extend_flip else ""),
            cfg.arch.replace(":", "_").replace(",", "_").replace("=", "")]
    if cfg.zca:
        tags.append("zca")
    if cfg.flat:
        tags.append("flat")
    if cfg.train_per_class:
        tags.append(f"sub{cfg.train_per_class}")
    name = "_".join(tags) + f"_seed{cfg.seed}"
    folder = Path(out_dir) / "experts" / name
    old = Path(out_dir) / old_file("OUT/experts/").removeprefix("OUT/") / name  # a run started before the rename
    return old if old.is_dir() and not folder.exists() else folder


def index_path(folder: str | Path) -> Path:
    """The index file of an expert folder: ``experts.json``, or its old name in a folder made before the rename."""
    new, old = Path(folder) / INDEX, Path(folder) / OLD_INDEX
    return old if old.exists() and not new.exists() else new


# --------------------------------------------------------------------------- training
def _param_spec(net: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(n, list(p.shape)) for n, p in net.named_parameters()]


def _train_indices(train, per_class: int | None, seed: int) -> torch.Tensor | None:
    if per_class is None:
        return None
    g = make_generator(derive_seed(seed, "buffer-subset"))  # the seed's tag stays: same subsets as before
    counts = train.class_counts()
    return torch.cat([train.sample_indices(c, min(per_class, counts[c]), g) for c in range(train.num_classes)])


class _Trainer:
    """Trains expert ``i`` epoch by epoch, checkpointing after every epoch."""

    def __init__(self, cfg: ExpertConfig, dataset, device: torch.device, zca: ZCA | None):
        from ..augment import DSA

        self.cfg, self.dataset, self.device, self.zca = cfg, dataset, device, zca
        info = dataset.info
        idx = _train_indices(dataset.train, cfg.train_per_class, cfg.seed)
        images, labels = dataset.train.images, dataset.train.labels
        if idx is not None:
            images, labels = images[idx], labels[idx]
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.aug = DSA(cfg.dsa_strategy, mode=cfg.dsa_mode) if cfg.dsa else None
        self._mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)

        self.whitened = None
        if zca is not None and self.images.numel() * 4 <= 2 * 1024**3:  # whiten once when it fits in 2 GB
            self.whitened = torch.cat([zca.from_uint8(self.images[s:s + 4096]) for s in range(0, len(self.images), 4096)])

    def prepare(self, x_uint8: torch.Tensor) -> torch.Tensor:
        if self.zca is not None:
            return self.zca.from_uint8(x_uint8)
        return normalize_uint8(x_uint8, self._mean, self._std)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        if self.whitened is not None:
            return self.whitened[idx]
        return self.prepare(self.images[idx])

    def new_net(self, i: int) -> torch.nn.Module:
        from ..networks import create_model

        info = self.dataset.info
        net = create_model(self.cfg.arch, channels=info.channels, num_classes=info.num_classes,
                           image_size=info.image_size, seed=derive_seed(self.cfg.seed, "expert-net", i))
        return net.to(self.device).train()

    def optimizer(self, net):
        return torch.optim.SGD(net.parameters(), lr=self.cfg.lr_teacher, momentum=self.cfg.momentum,
                               weight_decay=self.cfg.weight_decay)

    def epoch(self, net, opt, g: torch.Generator) -> float:
        cfg = self.cfg
        n = self.images.shape[0]
        order = torch.randperm(n, generator=g).to(self.device)
        total, count = 0.0, 0
        bn = BatchNormMomentum(net)
        params = [p for p in net.parameters() if p.requires_grad]
        for s in range(0, n, cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            x = self.batch(idx)
            y = self.labels[idx]
            if self.aug is not None:
                x = self.aug(x, generator=g, siamese=False)

            def closure():
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    out = net(x)
                return F.cross_entropy(out.float(), y)

            if cfg.flat:
                loss = gsam_direction(params, closure, rho=cfg.rho, alpha=cfg.alpha, adaptive=cfg.adaptive,
                                      second_pass=bn)
            else:  # plain SGD: cache-sized slices on a CPU (same gradient) unless BatchNorm needs the batch
                opt.zero_grad(set_to_none=True)
                loss = backward_in_slices(net, x, ce_shares(y), batch_slice(net, self.device), bf16=cfg.bf16)
            opt.step()
            lv = float(loss)
            if not math.isfinite(lv):
                raise FyiError(f"expert training loss became {lv}; lower --lr-teacher (now {cfg.lr_teacher})")
            total += lv * idx.numel()
            count += idx.numel()
        return total / max(count, 1)

    def test_accuracy(self, net) -> float:
        test = self.dataset.test
        return test_accuracy(net, test.images, test.labels, device=self.device, batch_size=1000, bf16=self.cfg.bf16,
                             prepare=self.prepare, cache_slices=False)


def _expert_file(folder: Path, i: int) -> Path:
    return folder / f"expert_{i:05d}.safetensors"


def _partial_file(folder: Path, i: int) -> Path:
    return folder / f"expert_{i:05d}.partial.pt"


def _save_expert(path: Path, traj: torch.Tensor, meta: dict) -> None:
    import safetensors.torch

    with atomic_path(path) as tmp:
        safetensors.torch.save_file({"trajectory": traj.contiguous()}, str(tmp),
                                    metadata={k: json.dumps(v) for k, v in meta.items()})


@flush_denormals()
def train_experts(
    cfg: ExpertConfig,
    dataset,
    output: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    stop_after: tuple[int, int] | int | None = None,
    command: str | None = None,
) -> "ExpertStore":
    """Train ``cfg.experts`` experts into ``output`` (continuing whatever is there); return the :class:`ExpertStore`.

    ``stop_after``: ``k`` stops after ``k`` experts finished by this call; ``(i, e)``
    stops after epoch ``e`` of expert ``i`` (leaving its partial state), as a
    crash would.  Tests use it to check that resuming gives identical tensors.
    In a process group (torchrun) the missing experts are dealt to the ranks: the same folder, the same tensors.
    """
    from ..runtime import progress_bar as tqdm

    cfg.check()
    device = resolve_device(device)
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise FyiError(f"{folder} is a file; give a folder for the expert trajectories")
    folder.mkdir(parents=True, exist_ok=True)
    rank, world = rank_world()
    if rank:
        barrier()  # torchrun: rank 0 prepares the folder (index, ZCA) first
    index_file = index_path(folder)
    if index_file.exists():
        index = _read_index(folder)
        if index["config"] != cfg.identity():
            theirs, ours = index["config"], cfg.identity()
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise FyiError(f"{folder} holds experts trained with different settings ({', '.join(diff)}); "
                           "use the same settings to add experts, or another --output folder")
    else:
        index = None
    if dataset.info.name != cfg.dataset:
        raise FyiError(f"ExpertConfig.dataset is {cfg.dataset!r} but the data is {dataset.info.name!r}")

    zca = None
    zca_record = None
    if cfg.zca:
        if progress:
            print(f"ZCA whitening of {dataset.info.name} (eps {cfg.zca_eps}; fitted once, then cached)")
        zca = zca_for_dataset(dataset, cfg.zca_eps)
        if not (folder / ZCA_FILE).exists():
            zca.save(folder / ZCA_FILE)
        zca_record = {"eps": cfg.zca_eps, "file": ZCA_FILE, "fingerprint": zca.fingerprint()}

    trainer = _Trainer(cfg, dataset, device, zca)
    probe = trainer.new_net(0)
    spec = _param_spec(probe)
    num_params = sum(math.prod(s) for _, s in spec)
    if index is None:
        info = dataset.info
        index = {
            "format": EXPERTS_FORMAT,
            "config": cfg.identity(),
            "dataset": {"name": info.name, "source": dataset.source, "channels": info.channels,
                        "image_size": info.image_size, "num_classes": info.num_classes,
                        "mean": list(info.mean), "std": list(info.std),
                        "train_images": int(trainer.images.shape[0])},
            "params": spec,
            "num_params": num_params,
            "zca": zca_record,
            "experts": [],
            "versions": package_versions(),
            "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_sealed_json(index_file, index, "expert index")
    elif index["params"] != [[n, s] for n, s in spec] and index["params"] != spec:
        raise FyiError(f"{folder}: the network's parameters differ from the stored experts'; use another folder")
    if world > 1 and not rank:
        barrier()  # the folder is ready: the other ranks go on

    done = {e["index"] for e in index["experts"] if _expert_file(folder, e["index"]).exists()}
    todo = shard([i for i in range(cfg.experts) if i not in done], rank, world)  # torchrun: dealt to the ranks
    sdtype = _DTYPES[cfg.dtype]
    finished_here = 0
    _note_kept(folder, len(done))
    bar = tqdm(total=cfg.experts, initial=cfg.experts - len(todo), desc=f"experts {cfg.dataset}{' flat' if cfg.flat else ''}",
               disable=not progress, dynamic_ncols=True)
    for i in todo:
        t0 = time.perf_counter()
        net = trainer.new_net(i)
        opt = trainer.optimizer(net)
        g = make_generator(derive_seed(cfg.seed, "expert-train", i))
        traj = [flat_params(net)]
        losses: list[float] = []
        accs: dict[str, float] = {}
        start_epoch = 0
        part = _partial_file(folder, i)
        if part.exists():
            try:
                st = load_sealed_torch(part, map_location=device, weights_only=False)
                if st.get("config") != cfg.identity():
                    raise ValueError("it was saved with other settings")
                net.load_state_dict(st["net"])
                opt.load_state_dict(st["opt"])
                g.set_state(st["generator"])
                traj, losses, accs, start_epoch = list(st["trajectory"]), st["losses"], st["accs"], st["epoch"]
                t0 -= st.get("seconds", 0.0)
            except Exception as e:  # noqa: BLE001 - a damaged partial state: said, and this expert starts over
                why = getattr(e, "reason", None) or (str(e) if isinstance(e, ValueError) else
                                                      f"unreadable ({type(e).__name__})")
                print(f"fyi: warning: partial expert state {part} is not usable ({why}); it only saves time, so "
                      f"expert {i} starts over", file=sys.stderr)
                net = trainer.new_net(i)
                opt = trainer.optimizer(net)
                g = make_generator(derive_seed(cfg.seed, "expert-train", i))
                traj, losses, accs, start_epoch = [flat_params(net)], [], {}, 0
        for e in range(start_epoch, cfg.epochs):
            losses.append(trainer.epoch(net, opt, g))
            traj.append(flat_params(net))
            if cfg.test_every and (e + 1) % cfg.test_every == 0 and e + 1 < cfg.epochs:
                accs[str(e + 1)] = trainer.test_accuracy(net)
            if progress:
                bar.set_postfix(expert=i, epoch=f"{e + 1}/{cfg.epochs}", loss=f"{losses[-1]:.3f}")
            if e + 1 < cfg.epochs:
                save_sealed_torch(part, {"config": cfg.identity(), "net": net.state_dict(), "opt": opt.state_dict(),
                                         "generator": g.get_state(), "trajectory": traj, "losses": losses,
                                         "accs": accs, "epoch": e + 1, "seconds": time.perf_counter() - t0},
                                  "partial expert state")
                _note_kept(folder, len(done) + finished_here, (i, e + 1))
                if isinstance(stop_after, tuple) and stop_after == (i, e + 1):
                    bar.close()
                    return ExpertStore(folder)
        accs[str(cfg.epochs)] = trainer.test_accuracy(net)
        seconds = time.perf_counter() - t0
        tensor = torch.stack(traj).to(sdtype)
        stats = {"index": i, "file": _expert_file(folder, i).name, "net_seed": derive_seed(cfg.seed, "expert-net", i),
                 "train_seed": derive_seed(cfg.seed, "expert-train", i), "train_loss": losses,
                 "test_acc": accs, "seconds": seconds}
        _save_expert(_expert_file(folder, i), tensor, {"expert": i, "epochs": cfg.epochs, "num_params": num_params})
        stats["sha256"] = file_sha256(_expert_file(folder, i))
        with locked(folder / (index_file.name + ".lock")):  # other ranks may add theirs at the same moment
            index = _read_index(folder)
            index["experts"] = sorted([e for e in index["experts"] if e["index"] != i] + [stats], key=lambda r: r["index"])
            write_sealed_json(index_file, index, "expert index")
        part.unlink(missing_ok=True)
        _note_kept(folder, len(done) + finished_here + 1)
        bar.update(1)
        bar.set_postfix(expert=i, test_acc=f"{accs[str(cfg.epochs)]:.3f}")
        finished_here += 1
        if isinstance(stop_after, int) and finished_here >= stop_after:
            break
    barrier()  # torchrun: every rank's experts are in the index
    bar.close()
    return ExpertStore(folder)


def _note_kept(folder: Path, finished: int, partial: tuple[int, int] | None = None) -> None:
    """What a stop leaves in ``folder`` for a rerun to continue (said by the ``fyi`` command)."""
    from ..runtime import note_kept

    what = f"{finished} finished expert(s)" + (f" and expert {partial[0]} up to epoch {partial[1]}" if partial
                                                else "")
    note_kept("experts", f"{what} in {folder}" if finished or partial else None)


def _read_index(folder: Path) -> dict:
    path = index_path(folder)
    if not path.exists():
        raise FyiError(f"{folder} holds no expert trajectories ({INDEX} is missing); "
                       "make them with `fyi experts --dataset NAME --experts N --epochs E -o FOLDER`")
    index, why = read_sealed_json(path)
    if index is None:
        raise FyiError(f"{path} is not usable ({why}); re-create the experts with the `fyi experts` command that made "
                       "them (finished experts are checked against their own hashes)")
    if index.get("format") != EXPERTS_FORMAT:
        raise FyiError(f"{path} has expert-folder format {index.get('format')!r}, this fyi-apps reads "
                       f"{EXPERTS_FORMAT}; re-create the experts")
    return index


# --------------------------------------------------------------------------- loading
class ExpertStore:
    """Read access to a folder of expert trajectories (what :func:`train_experts` writes)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FyiError(f"expert folder {folder} does not exist; make it with "
                           "`fyi experts --dataset NAME --experts N --epochs E -o FOLDER`")
        self.index = _read_index(self.folder)
        self.config = dict(self.index["config"])
        self.experts = [e for e in self.index["experts"] if (self.folder / e["file"]).exists()]
        if not self.experts:
            raise FyiError(f"{self.folder} has no finished expert yet; run (or resume) `fyi experts` first")
        self.spec = [(n, tuple(s)) for n, s in self.index["params"]]
        self.num_params = int(self.index["num_params"])
        self._zca: ZCA | None = None
        self._verified: set[int] = set()

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    @property
    def epochs(self) -> int:
        return int(self.config["epochs"])

    @property
    def dataset(self) -> str:
        return str(self.config["dataset"])

    @property
    def arch(self) -> str:
        return str(self.config["arch"])

    @property
    def flat(self) -> bool:
        return bool(self.config.get("flat"))

    @property
    def zca(self) -> ZCA | None:
        rec = self.index.get("zca")
        if not rec:
            return None
        if self._zca is None:
            self._zca = ZCA.load(self.folder / rec["file"])
        return self._zca

    def zca_record(self) -> dict | None:
        return dict(self.index["zca"]) if self.index.get("zca") else None

    def load(self, k: int, epochs: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
        """Parameter vectors of the ``k``-th available expert at ``epochs`` -> ``[len(epochs), P]``."""
        from safetensors import safe_open

        if not 0 <= k < self.num_experts:
            raise FyiError(f"expert {k} does not exist; {self.folder} has {self.num_experts}")
        for e in epochs:
            if not 0 <= int(e) <= self.epochs:
                raise FyiError(f"epoch {e} is outside the stored trajectories (0..{self.epochs})")
        path = self.folder / self.experts[k]["file"]
        self._verify(k, path)
        try:
            with safe_open(str(path), framework="pt") as f:
                sl = f.get_slice("trajectory")
                rows = [sl[int(e):int(e) + 1] for e in epochs]
        except Exception as ex:  # noqa: BLE001
            raise FyiError(f"{path} is unreadable ({type(ex).__name__}); delete it and resume `fyi experts`") from None
        out = torch.cat(rows).to(dtype)
        if out.shape[1] != self.num_params:
            raise FyiError(f"{path} holds {out.shape[1]} parameters, {INDEX} says {self.num_params}; re-create it")
        return out.to(device) if device is not None else out

    def _verify(self, k: int, path: Path) -> None:
        """Check an expert file against the hash in the index, once per process (older folders have none)."""
        want = self.experts[k].get("sha256")
        if want is None or k in self._verified:
            return
        if not path.exists() or file_sha256(path) != want:
            raise FyiError(f"expert file {path} does not match the hash in {INDEX} (changed or corrupted on disk); "
                           f"delete it and rerun the `fyi experts` command, which trains that expert again")
        self._verified.add(k)

    def trajectory(self, k: int) -> torch.Tensor:
        return self.load(k, range(self.epochs + 1))

    def summary(self) -> dict:
        accs = [e["test_acc"].get(str(self.epochs)) for e in self.experts]
        accs = [a for a in accs if a is not None]
        return {"folder": str(self.folder), "experts": self.num_experts, "epochs": self.epochs,
                "num_params": self.num_params, "flat": self.flat, "zca": bool(self.index.get("zca")),
                "mean_test_acc": sum(accs) / len(accs) if accs else None,
                "mean_seconds": sum(e["seconds"] for e in self.experts) / len(self.experts)}


__getattr__ = module_getattr(__name__, globals().__getitem__)  # the old names warn (fyi_apps.deprecated)
