"""A real crash: ``kill -9`` of the ``fyi`` command in the middle of a run, then the same command again.

The in-process resume tests stop a run at a chosen iteration; these kill a
separate process at whatever point it has reached once its first checkpoint is
on disk, the way a machine that goes down would, and check that rerunning the
command (with ``--resume`` for distillation) ends with exactly the tensors an
uninterrupted run gives.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fyi_apps.distill.experts import ExpertStore
from fyi_apps.records import load_sealed_torch
from fyi_apps.synset import load_synset

ARCH = "convnet:width=8,depth=2"


def _env(tmp_path):
    return dict(os.environ, OMP_NUM_THREADS="1", FYI_CACHE=os.environ.get("FYI_CACHE") or str(tmp_path / "cache"))


def _fyi(*args):
    return [sys.executable, "-m", "fyi_apps.cli", *args, "--quiet", "--device", "cpu"]


def _run(cmd, env):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]


def _kill_when(cmd, ready, env, timeout=300):
    """Start ``cmd`` and SIGKILL it as soon as ``ready()`` holds, while it is still running."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if p.poll() is not None:
                pytest.fail(f"the run ended (exit {p.returncode}) before it could be killed: {p.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint appeared in time")
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        assert p.wait(60) == -signal.SIGKILL, "the run had already finished when it was killed"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_distill_killed_then_resumed_ends_with_the_uninterrupted_set(tmp_path):
    env = _env(tmp_path)
    args = ["distill", "--dataset", "digits", "--method", "dm", "--fyi", "--ipc", "2", "--iterations", "80",
            "--batch-real", "32", "--checkpoint-every", "4", "--seed", "5", "--arch", ARCH, "--no-grid",
            "--out", str(tmp_path)]
    full, crashed = tmp_path / "full.safetensors", tmp_path / "crashed.safetensors"
    ckpt = tmp_path / "crashed.ckpt.pt"
    _run(_fyi(*args, "-o", str(full)), env)

    _kill_when(_fyi(*args, "-o", str(crashed)), ckpt.exists, env)
    assert ckpt.exists() and not crashed.exists()  # no half-written set
    state = load_sealed_torch(ckpt, weights_only=False)
    assert 4 <= state["iteration"] < 80
    _run(_fyi(*args, "-o", str(crashed), "--resume"), env)
    assert not ckpt.exists()
    a, b = load_synset(full), load_synset(crashed)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_buffers_and_mtt_killed_then_rerun_end_with_the_uninterrupted_results(tmp_path):
    env = _env(tmp_path)
    args = ["buffers", "--dataset", "digits", "--experts", "2", "--epochs", "12", "--arch", ARCH,
            "--lr-teacher", "0.1", "--seed", "3", "--out", str(tmp_path)]
    full, crashed = tmp_path / "experts-full", tmp_path / "experts-crashed"
    _run(_fyi(*args, "-o", str(full)), env)
    # killed in the middle of the second expert: the first is kept, the second continues from its last epoch
    _kill_when(_fyi(*args, "-o", str(crashed)), (crashed / "expert_00001.partial.pt").exists, env)
    assert (crashed / "expert_00000.safetensors").exists() and not (crashed / "expert_00001.safetensors").exists()
    _run(_fyi(*args, "-o", str(crashed)), env)
    a, b = ExpertStore(full), ExpertStore(crashed)
    assert b.num_experts == 2 and not (crashed / "expert_00001.partial.pt").exists()
    for k in range(2):
        assert torch.equal(a.trajectory(k), b.trajectory(k))

    # MTT + FYI on those experts, killed after its first checkpoint: same images and learned lr
    margs = ["distill", "--method", "mtt", "--fyi", "--dataset", "digits", "--ipc", "1", "--iterations", "40",
             "--arch", ARCH, "--buffers", str(full), "--lr-img", "10", "--checkpoint-every", "2", "--seed", "1",
             "--option", "syn_steps=4", "--option", "expert_epochs=2", "--option", "max_start_epoch=6",
             "--option", "lr_teacher=0.1", "--no-grid", "--out", str(tmp_path)]
    m_full, m_crashed = tmp_path / "mtt-full.safetensors", tmp_path / "mtt-crashed.safetensors"
    _run(_fyi(*margs, "-o", str(m_full)), env)
    _kill_when(_fyi(*margs, "-o", str(m_crashed)), (tmp_path / "mtt-crashed.ckpt.pt").exists, env)
    assert not m_crashed.exists()
    _run(_fyi(*margs, "-o", str(m_crashed), "--resume"), env)
    a, b = load_synset(m_full), load_synset(m_crashed)
    assert torch.equal(a.images, b.images) and a.lr == b.lr and a.lr is not None
