"""runtime.cache_key: the one helper that makes a cache key (sha256 of JSON) in fyi_apps and the benchmarks.

Every key written before ``cache_key`` existed must keep its value (caches on disk are still found): each call site
passes the serialisation it used, and the expressions below are the ones those call sites had, copied as they were.
"""
import hashlib
import json

import pytest
import torch

from fyi_apps.runtime import _json_default, cache_key

SAMPLES = [
    [300, [0, 1, 2], "single", "scikit-learn digits"],
    {"section": "dm", "dataset": "cifar10", "ipc": 10, "fyi": False, "rounds": 2, "threads": 1},
    [{"eval_epochs": 20, "seeds": [0], "bf16": False, "data": "x"}, {"iterations": 2, "options": {"b": 1, "a": 2}}],
    {"zeta": [1.5, None, True], "alpha": "é", "path": "a/b"},
]


@pytest.mark.parametrize("obj", SAMPLES)
def test_cache_key_reproduces_every_old_key(obj):
    # benchmarks/ablation.py: no sorting, json's default separators, 10 characters
    assert cache_key(obj, 10, sort_keys=False, separators=(", ", ": ")) == \
        hashlib.sha256(json.dumps(obj).encode()).hexdigest()[:10]
    # benchmarks/fidelity.py (10) and benchmarks/speed.py (12): sorted keys
    for n in (10, 12):
        assert cache_key(obj, n, separators=(", ", ": ")) == \
            hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:n]
    # tasks/continual/experiment.py: sorted keys, default=str, 20 characters
    assert cache_key(obj, 20, separators=(", ", ": "), default=str) == \
        hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]
    # data/cache.py: the whole digest, unsorted
    assert cache_key(obj, sort_keys=False, separators=(", ", ": ")) == \
        hashlib.sha256(json.dumps(obj).encode()).hexdigest()
    # runtime's seal: canonical JSON (the defaults)
    assert cache_key(obj, default=_json_default) == hashlib.sha256(json.dumps(
        obj, sort_keys=True, default=_json_default, separators=(",", ":")).encode()).hexdigest()


def test_cache_key_with_extra_parts_is_the_old_incremental_hash():
    # tasks/continual/online.py: the config, then the class names, then the raw bytes of images and labels
    ident, names = SAMPLES[1], ["zero", "one"]
    images, labels = torch.arange(12, dtype=torch.uint8), torch.tensor([0, 1])
    h = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode())
    h.update(json.dumps(list(names)).encode())
    h.update(images.numpy().tobytes())
    h.update(labels.numpy().tobytes())
    assert cache_key(ident, 20, separators=(", ", ": "), default=str,
                     extra=(list(names), images.numpy().tobytes(), labels.numpy().tobytes())) == h.hexdigest()[:20]


def test_cache_key_is_canonical_by_default():
    assert cache_key({"b": 1, "a": [1, 2]}) == cache_key({"a": [1, 2], "b": 1})
    assert len(cache_key("x")) == 64 and len(cache_key("x", 7)) == 7
