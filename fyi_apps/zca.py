"""ZCA whitening of image pixels: fitting, caching per dataset, storage.

MTT and FTD can train their experts (and distil) on ZCA-whitened images, a
fixed linear transform of the pixels fitted on the training set
(:class:`ZCA`, :func:`fit_zca`).  :func:`zca_for_dataset` fits it once per
training set and caches it on disk; :func:`zca_from_config` finds the
transform a synthetic set's ``config["zca"]`` refers to, so that evaluation
whitens the test images the same way.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DamagedFile, FyiError
from .runtime import atomic_path, cache_dir


@dataclass
class ZCA:
    """ZCA whitening ``z = (p - mu) W`` of flattened pixels ``p`` in [0, 1].

    ``W = U diag((s + eps)^-1/2) U^T`` from the eigen-decomposition ``U diag(s) U^T``
    of the (unbiased) pixel covariance of the training set; ``eps`` 0.1 as in
    the MTT/FTD reference code (which uses kornia's ``ZCAWhitening``; kornia is
    not a dependency here, so this is the same computation with
    ``torch.linalg.eigh``).  ``W`` is symmetric; ``W^-1 = U diag((s + eps)^1/2) U^T``.

    Inside fyi-apps images are normalised with the dataset's mean/std, so
    :meth:`__call__` takes *normalised* images, undoes the normalisation and
    whitens.  Whitened images are what the experts, the distillation and the
    evaluation of a ZCA synthetic set see.
    """

    mean: torch.Tensor  # [D] pixel mean in [0, 1]
    matrix: torch.Tensor  # [D, D]
    eigenvalues: torch.Tensor  # [D] (for the inverse and the record)
    eigenvectors: torch.Tensor  # [D, D]
    eps: float
    norm_mean: tuple[float, ...]
    norm_std: tuple[float, ...]

    @property
    def dim(self) -> int:
        return int(self.mean.numel())

    def _stats(self, x: torch.Tensor):
        c = len(self.norm_mean)
        m = torch.tensor(self.norm_mean, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        s = torch.tensor(self.norm_std, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
        return m, s

    def whiten_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` images in [0, 1] -> whitened images of the same shape."""
        flat = pixels.reshape(pixels.shape[0], -1)
        if flat.shape[1] != self.dim:
            raise FyiError(f"ZCA was fitted on {self.dim}-pixel images but got {flat.shape[1]}; "
                           "use the transform of the dataset the images come from")
        mean, w = self._on(flat.device, flat.dtype)
        return ((flat - mean) @ w).reshape(pixels.shape)

    def _on(self, device, dtype):
        """Mean and matrix on ``device`` (copied once per device/dtype, not per batch)."""
        cache = self.__dict__.setdefault("_copies", {})
        key = (str(device), dtype)
        if key not in cache:
            cache[key] = (self.mean.to(device=device, dtype=dtype), self.matrix.to(device=device, dtype=dtype))
        return cache[key]

    def __call__(self, normalised: torch.Tensor) -> torch.Tensor:
        """Normalised images (dataset mean/std) -> whitened images."""
        m, s = self._stats(normalised)
        return self.whiten_pixels(normalised * s + m)

    def from_uint8(self, images: torch.Tensor) -> torch.Tensor:
        return self.whiten_pixels(images.float() / 255.0)

    def inverse_pixels(self, whitened: torch.Tensor) -> torch.Tensor:
        """Whitened images -> pixels in [0, 1] (unclamped); for pictures."""
        u = self.eigenvectors.to(whitened.device, whitened.dtype)
        root = (self.eigenvalues.to(whitened.device, whitened.dtype) + self.eps).sqrt()
        flat = whitened.reshape(whitened.shape[0], -1)
        return ((flat @ u) * root @ u.T + self.mean.to(whitened.device, whitened.dtype)).reshape(whitened.shape)

    def fingerprint(self) -> str:
        return hashlib.sha256(self.matrix.float().contiguous().cpu().numpy().tobytes()).hexdigest()[:16]

    # --- storage ---
    def save(self, path: Path) -> None:
        tensors = {"mean": self.mean.float().contiguous(), "matrix": self.matrix.float().contiguous(),
                   "eigenvalues": self.eigenvalues.float().contiguous(),
                   "eigenvectors": self.eigenvectors.float().contiguous()}
        meta = {"eps": repr(float(self.eps)), "norm_mean": json.dumps(list(self.norm_mean)),
                "norm_std": json.dumps(list(self.norm_std))}
        meta["sha256"] = _digest(tensors, meta)  # checked on load: a changed byte is noticed
        _save_safetensors(path, tensors, meta)

    @classmethod
    def load(cls, path: Path) -> "ZCA":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata()
                t = {k: f.get_tensor(k) for k in f.keys()}
            stored = meta.pop("sha256", None)  # files written before the hash was added have none
            if stored is not None and stored != _digest(t, meta):
                raise DamagedFile(f"ZCA file {path} does not match its content hash (changed or corrupted on "
                                  "disk); delete it to refit", "its content hash does not match")
            return cls(t["mean"], t["matrix"], t["eigenvalues"], t["eigenvectors"], float(meta["eps"]),
                       tuple(json.loads(meta["norm_mean"])), tuple(json.loads(meta["norm_std"])))
        except FyiError:
            raise
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
            raise DamagedFile(f"ZCA file {path} is unreadable ({type(e).__name__}); delete it to refit",
                              f"unreadable ({type(e).__name__})") from None


def _digest(tensors: dict, metadata: dict) -> str:
    """sha256 over the tensors (by name) and the metadata: what a stored transform is."""
    h = hashlib.sha256(json.dumps(metadata, sort_keys=True).encode())
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def _save_safetensors(path: Path, tensors: dict, metadata: dict) -> None:
    """safetensors file written atomically (ordinary file permissions: see :func:`~fyi_apps.runtime.atomic_path`)."""
    import safetensors.torch

    with atomic_path(path) as tmp:
        safetensors.torch.save_file(tensors, str(tmp), metadata=metadata)


def fit_zca(images_uint8: torch.Tensor, eps: float = 0.1, *, norm_mean=(0.0,), norm_std=(1.0,),
            chunk: int = 4096) -> ZCA:
    """Fit :class:`ZCA` on uint8 images ``[N, C, H, W]`` (covariance accumulated in float64)."""
    n = images_uint8.shape[0]
    if n < 2:
        raise FyiError("ZCA needs at least 2 training images")
    if not eps > 0:
        raise FyiError(f"ZCA eps must be positive, got {eps}")
    flat = images_uint8.reshape(n, -1)
    d = flat.shape[1]
    total = torch.zeros(d, dtype=torch.float64)
    for s in range(0, n, chunk):
        total += flat[s:s + chunk].double().sum(0) / 255.0
    mean = total / n
    cov = torch.zeros(d, d, dtype=torch.float64)
    for s in range(0, n, chunk):
        xc = flat[s:s + chunk].double() / 255.0 - mean
        cov += xc.T @ xc
    cov /= n - 1
    evals, evecs = torch.linalg.eigh(cov)
    evals = evals.clamp_min(0.0)
    w = (evecs * (evals + eps).rsqrt()) @ evecs.T
    return ZCA(mean.float(), w.float(), evals.float(), evecs.float(), float(eps),
               tuple(float(v) for v in norm_mean), tuple(float(v) for v in norm_std))


def _train_fingerprint(dataset) -> str:
    h = hashlib.sha256()
    h.update(str(dataset.info.name).encode())
    h.update(str(tuple(dataset.train.images.shape)).encode())
    h.update(dataset.train.images.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def zca_for_dataset(dataset, eps: float = 0.1) -> ZCA:
    """The ZCA transform of ``dataset``'s training set (fitted once, then cached on disk)."""
    key = f"{dataset.info.name}-{_train_fingerprint(dataset)}-eps{float(eps):g}"
    path = cache_dir() / "zca" / f"{key}.safetensors"
    if path.exists():
        try:
            return ZCA.load(path)
        except FyiError as e:  # a cache entry: said, refitted and replaced
            import sys

            print(f"fyi: warning: ZCA cache {path} is not usable ({getattr(e, 'reason', e)}); it is a cache, so the "
                  "transform is fitted again and the file replaced", file=sys.stderr)
            path.unlink(missing_ok=True)
    z = fit_zca(dataset.train.images, eps, norm_mean=dataset.info.mean, norm_std=dataset.info.std)
    path.parent.mkdir(parents=True, exist_ok=True)
    z.save(path)
    return z


def zca_from_config(record: dict, dataset) -> ZCA:
    """The transform a synthetic set's ``config["zca"]`` refers to, checked against ``dataset``."""
    z = zca_for_dataset(dataset, float(record.get("eps", 0.1)))
    want = record.get("fingerprint")
    if want and want != z.fingerprint():
        import warnings

        warnings.warn(f"the ZCA transform refitted on {dataset.info.name} differs from the one the set was "
                      f"distilled with (fingerprint {z.fingerprint()} vs {want}); accuracy may be off", stacklevel=2)
    return z

