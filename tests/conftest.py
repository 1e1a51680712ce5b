"""Shared fixtures: an isolated cache and the bundled digits dataset."""
import os

import pytest
import torch

# The tests train tiny networks: one thread is faster than two and immune to
# oversubscription when the machine is shared (timings are never asserted).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Caches go to a per-session folder unless the caller chose one (CI sets FYI_CACHE)."""
    if not os.environ.get("FYI_CACHE"):
        os.environ["FYI_CACHE"] = str(tmp_path_factory.mktemp("fyi-cache"))
    yield


@pytest.fixture(scope="session")
def digits():
    from fyi_apps.data import load_dataset

    return load_dataset("digits")
