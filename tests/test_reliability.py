"""Nothing corrupt is used silently: sealed records and caches, claims shared by two processes, options that
do not apply are refused, constant data is named (fyi-apps issue 27)."""
import json
import multiprocessing
import os
import subprocess
import sys

import pytest
import torch

from fyi_apps.errors import FyiError
from fyi_apps.runtime import read_sealed_json, write_sealed_json
from fyi_apps.tasks import nas


def test_a_sealed_json_notices_a_changed_byte(tmp_path):
    p = write_sealed_json(tmp_path / "r.json", {"acc": 0.5, "curve": [1, 2.5]})
    assert read_sealed_json(p) == ({"acc": 0.5, "curve": [1, 2.5]}, None)
    p.write_text(p.read_text().replace("0.5", "0.6"))  # still valid JSON
    obj, why = read_sealed_json(p)
    assert obj is None and "hash does not match" in why
    p.write_text("{not json")
    assert read_sealed_json(p)[1].startswith("unreadable")
    assert read_sealed_json(tmp_path / "none.json") == (None, "missing")


def _jobs(digits, n=3):
    from fyi_apps.evaluate import EvalConfig

    spec = nas.resolve_set("random:2", digits)
    return [nas.make_job(f"mlp:width={8 * (i + 1)}", spec, EvalConfig(epochs=1, dsa=False), 0) for i in range(n)]


@pytest.mark.parametrize("corrupt", ["string accuracy", "flipped byte", "other key"])
def test_a_bad_nas_record_is_reported_and_recomputed(digits, tmp_path, capsys, corrupt):
    nas.remember_dataset(digits)
    jobs = _jobs(digits, 1)
    cache = nas.RecordCache(tmp_path)
    good = nas.run_jobs(jobs, cache, device="cpu", progress=False)[jobs[0].key]
    path = cache.path(jobs[0].key)
    rec = json.loads(path.read_text())
    if corrupt == "string accuracy":
        rec.pop("_sha256")
        rec["acc"] = "0.9"
        path.write_text(json.dumps(rec))
    elif corrupt == "flipped byte":
        text = path.read_text()
        i = text.index('"acc": ') + len('"acc": ') + 2
        path.write_text(text[:i] + ("7" if text[i] != "7" else "3") + text[i + 1:])
    else:
        rec.pop("_sha256")
        rec["key"] = "0" * 24
        path.write_text(json.dumps(rec))
    again = nas.run_jobs(jobs, cache, device="cpu", progress=False)[jobs[0].key]
    err = capsys.readouterr().err
    assert f"run record {path} is not usable" in err and "done again" in err
    assert err.count("is not usable") == 1  # said once, though the runner looks at the record three times
    assert again["acc"] == good["acc"]  # recomputed: same seed, same bits
    assert cache.get(jobs[0].key)["acc"] == good["acc"]  # and replaced


def test_claims_keep_a_live_process_s_job_and_take_over_a_dead_one(tmp_path):
    cache = nas.RecordCache(tmp_path)
    assert cache.claim("k1") and not cache.claimed_elsewhere("k1")  # our own claim
    cache.release("k1")
    import socket

    cache.claim_path("k2").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    assert cache.claimed_elsewhere("k2") and not cache.claim("k2")  # a live process holds it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cache.claim_path("k3").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid}))
    assert not cache.claimed_elsewhere("k3") and cache.claim("k3")  # its process is gone: taken over
    cache.claim_path("k4").write_text("")  # being written by another process, or foreign: live while fresh
    assert cache.claimed_elsewhere("k4") and not cache.claim("k4")
    os.utime(cache.claim_path("k4"), (0, 0))  # ... and stale once old
    assert not cache.claimed_elsewhere("k4") and cache.claim("k4")
    assert not list(tmp_path.glob(".*.tmp"))  # no private claim files left behind


def _share(folder, log):
    import fyi_apps.tasks.nas.runner as runner
    from fyi_apps.data import load_dataset

    digits = load_dataset("digits")
    nas.remember_dataset(digits)
    original = runner.train_job

    def counted(job, *a, **k):
        with open(log, "a") as f:
            f.write(job.key + "\n")
        return original(job, *a, **k)

    runner.train_job = counted
    nas.run_jobs(_jobs(digits, 6), nas.RecordCache(folder), device="cpu", progress=False)


def _twice(target, folder, log) -> list[str]:
    """Run ``target(folder, log)`` in two spawned processes at once; the lines both wrote to ``log``."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=(str(folder), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(240)
    assert all(p.exitcode == 0 for p in procs)
    return log.read_text().split()


def test_two_processes_on_one_folder_share_the_work(digits, tmp_path):
    trained = _twice(_share, tmp_path / "cache", tmp_path / "trained.txt")
    assert sorted(trained) == sorted({j.key for j in _jobs(digits, 6)})  # every job once, none twice


def test_options_that_do_not_apply_are_refused(tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text("")
    with pytest.raises(FyiError, match="only truth=nb201 or stratified"):
        nas.check_config(nas.NasConfig(dataset="digits", truth="real:2", nb201=str(csv)))
    for bad in ("0", "-3", "0%", "150%"):
        with pytest.raises(FyiError, match="positive counts"):
            nas.topk_list(bad)


_CL = ["cl", "--benchmark", "split-digits", "--memory", "random", "--ipc", "1", "--seeds", "1", "--arch", "mlp"]


@pytest.mark.parametrize("argv, says", [
    ([*_CL, "--strategy", "ewc"], "--strategy ewc does not apply to this run: the gdumb protocol does not read it; "
                                  "drop it or use --protocol replay"),
    ([*_CL, "--train-epochs", "2"], "--train-epochs 2 does not apply to this run: the gdumb protocol"),
    ([*_CL, "--protocol", "replay", "--epochs", "5"], "--epochs 5 does not apply to this run: the replay protocol"),
    ([*_CL, "--protocol", "replay", "--no-dsa"], "--no-dsa does not apply to this run: the replay protocol"),
    ([*_CL, "--iterations", "dm=3"], "--iterations dm=3 does not apply to this run: no memory is distilled online"),
    ([*_CL, "--lr-img", "0.1"], "--lr-img 0.1 does not apply to this run: no memory is distilled online"),
    ([*_CL, "--herding-epochs", "3"], "--herding-epochs 3 does not apply to this run: no memory is herding"),
    (["baseline", "--dataset", "digits", "--ipc", "2", "--herding-epochs", "3"], "--herding-epochs 3 does not apply"),
    (["baseline", "--dataset", "digits", "--ipc", "2", "--arch", "mlp"], "--arch mlp does not apply"),
    (["score", "SET", "--dataset", "digits", "--sizes", "1,2"], "--dataset digits, --sizes 1,2 do not apply"),
    (["score", "SET", "--repeats", "3"], "--repeats 3 does not apply: a set is scored whole"),
])
def test_command_line_options_the_run_would_not_read_are_refused(digits, tmp_path, capsys, argv, says):
    import fyi_apps as fyi
    from fyi_apps.cli import main

    path = tmp_path / "s.safetensors"
    fyi.save_synset(path, fyi.random_subset(digits, 1))
    argv = [str(path) if a == "SET" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fyi: error: {says}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_constant_data_is_named(tmp_path, capsys):
    from PIL import Image

    from fyi_apps.data import load_dataset

    for split in ("train", "test"):
        for c, value in (("a", 0), ("b", 0)):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (8, 8), (value, value, value)).save(d / f"{i}.png")
    with pytest.raises(FyiError, match="nothing to learn"):
        load_dataset(f"imagefolder:{tmp_path}", cache=False)
    (tmp_path / "train" / "b" / "0.png").unlink()
    Image.new("RGB", (8, 8), (200, 10, 90)).save(tmp_path / "train" / "b" / "0.png")
    load_dataset(f"imagefolder:{tmp_path}", cache=False)
    assert "class(es) a of" in capsys.readouterr().err


def test_a_corrupted_dataset_cache_is_decoded_again(tmp_path, monkeypatch, capsys):
    from fyi_apps.data import load_dataset
    from test_data import write_cifar10

    write_cifar10(tmp_path / "data")
    monkeypatch.setenv("FYI_CACHE", str(tmp_path / "cache"))
    first = load_dataset("cifar10", root=tmp_path / "data")
    files = list((tmp_path / "cache" / "datasets").glob("*.pt"))
    assert len(files) == 1
    blob = torch.load(files[0], weights_only=True)
    blob["train_images"][0, 0, 0, 0] ^= 0xFF  # a flipped byte inside the decoded images
    torch.save(blob, files[0])
    again = load_dataset("cifar10", root=tmp_path / "data")
    assert "is not usable" in capsys.readouterr().err
    assert torch.equal(again.train.images, first.train.images)


def _share_cl(folder, log):
    import fyi_apps.tasks.continual.experiment as ex
    from fyi_apps.tasks import continual as cl

    original = ex.run_one

    def counted(cfg, kind, seed, **kw):
        with open(log, "a") as f:
            f.write(f"{kind}/{seed}\n")
        return original(cfg, kind, seed, **kw)

    ex.run_one = counted
    cfg = cl.CLConfig(benchmark="split-digits", buffers=["random"], seeds=[0, 1, 2, 3], ipc=1, epochs=2, arch="mlp")
    cl.run_experiment(cfg, device="cpu", progress=False, resume_dir=folder)


def test_two_cl_processes_on_one_folder_share_the_runs(tmp_path):
    ran = _twice(_share_cl, tmp_path / "runs", tmp_path / "ran.txt")
    assert sorted(ran) == [f"random/{s}" for s in range(4)]  # each run once
    assert not list((tmp_path / "runs").glob("*.claim"))  # claims released


def test_a_damaged_cl_run_file_is_reported_and_run_again(tmp_path, capsys):
    from fyi_apps.tasks import continual as cl

    cfg = cl.CLConfig(benchmark="split-digits", buffers=["random"], seeds=[0], ipc=1, epochs=2, arch="mlp")
    first = cl.run_experiment(cfg, device="cpu", progress=False, resume_dir=tmp_path)
    path, = tmp_path.glob("*.json")
    path.write_text(path.read_text().replace('"seed": 0', '"seed": 7', 1))
    again = cl.run_experiment(cfg, device="cpu", progress=False, resume_dir=tmp_path)
    assert capsys.readouterr().err.count("is not usable") == 1  # said once, though looked at before and after the claim
    assert again["aggregate"]["random"]["final_acc"] == first["aggregate"]["random"]["final_acc"]


def _cl_checked(**fields):
    from fyi_apps.options import check_fields
    from fyi_apps.tasks import continual as cl

    check_fields(cl.CLConfig(**fields))  # what run_experiment does first


@pytest.mark.parametrize("call, says", [
    (lambda fyi, ds, s: fyi.evaluate(s, ds, seeds=[]), "seeds needs at least one seed"),
    (lambda fyi, ds, s: fyi.evaluate(s, ds, seeds=2), "seeds must be a list"),
    (lambda fyi, ds, s: fyi.evaluate(s, ds, cfg="cfg.json"), "cfg must be an EvalConfig"),
    (lambda fyi, ds, s: fyi.evaluate(s, ds, cfg={"epoch": 3}), "unknown field(s) epoch"),
    (lambda fyi, ds, s: fyi.evaluate(None, ds), "synset must be a SyntheticSet"),
    (lambda fyi, ds, s: fyi.evaluate(s, 3), "dataset must be a Dataset or a dataset name"),
    (lambda fyi, ds, s: fyi.evaluate_images(s.images, s.labels, ds, seeds=[]), "seeds needs at least one"),
    (lambda fyi, ds, s: fyi.rank({"dataset": "digits", "proxy": "random"}, cache_dir="x"), "unknown field(s) proxy"),
    (lambda fyi, ds, s: fyi.rank(3, cache_dir="x"), "cfg must be a NasConfig"),
    (lambda fyi, ds, s: fyi.make_memory("random", ipc="a", num_classes=10), "ipc must be a positive integer"),
    (lambda fyi, ds, s: fyi.make_memory("random", ipc=1.5, num_classes=10), "ipc must be a positive integer"),
    (lambda fyi, ds, s: fyi.make_memory("random", ipc=1, num_classes=-10), "num_classes must be a positive"),
    (lambda fyi, ds, s: fyi.load_synset(123), "path must be a file path"),
    (lambda fyi, ds, s: fyi.load_synset(None), "path must be a file path"),
    (lambda fyi, ds, s: fyi.NasConfig(proxies=3), "proxies must be a name or a list"),
    (lambda fyi, ds, s: fyi.NasConfig(proxy_epochs=0), "proxy_epochs must be a positive integer"),
    (lambda fyi, ds, s: nas.check_config(fyi.NasConfig(topk=[0])), "positive counts"),
    # the same kinds of mistake in the other public functions
    (lambda fyi, ds, s: fyi.load_dataset("digits", root=5), "root must be a folder path"),
    (lambda fyi, ds, s: fyi.random_subset(ds, "2"), "ipc must be a positive integer, got '2'"),
    (lambda fyi, ds, s: fyi.herding_subset(ds, 1.5), "ipc must be a positive integer, got 1.5"),
    (lambda fyi, ds, s: fyi.random_subset(ds, 1, seed="x"), "seed must be an integer >= 0"),
    (lambda fyi, ds, s: fyi.random_subset(3, 1), "dataset must be a Dataset or a dataset name"),
    (lambda fyi, ds, s: fyi.list_models(3), "pattern must be a wildcard string"),
    (lambda fyi, ds, s: fyi.list_datasets(3), "pattern must be a wildcard string"),
    (lambda fyi, ds, s: fyi.show(s, padding=-1), "padding must be an integer >= 0"),
    (lambda fyi, ds, s: fyi.show(s, labels=[1]), "labels applies only when x is an image tensor"),
    (lambda fyi, ds, s: fyi.distill("dm", ds, 1, iterations=1, callbacks=print), "callbacks must be a list"),
    (lambda fyi, ds, s: fyi.save_synset("x.safetensors", "s"), "synset must be a SyntheticSet"),
    (lambda fyi, ds, s: fyi.save_synset(s, "x.safetensors"), "the two arguments are swapped"),
    (lambda fyi, ds, s: fyi.rank(fyi.NasConfig(dataset="digits"), cache_dir=3), "cache_dir must be a string"),
    (lambda fyi, ds, s: fyi.rank(fyi.NasConfig(dataset="digits"), dataset=3), "dataset must be a Dataset"),
    (lambda fyi, ds, s: fyi.make_memory("random", ipc=1, num_classes=10, seed="x"), "seed must be an integer"),
    (lambda fyi, ds, s: fyi.unequalness(s.images, None, 10), "labels as a 1-D tensor of class ids"),
    (lambda fyi, ds, s: fyi.unequalness(s.images, s.labels + 5, 10), "labels must be class ids from 0 to 9"),
    (lambda fyi, ds, s: _cl_checked(seeds=2), "seeds must be a list of integer seeds"),
    (lambda fyi, ds, s: fyi.evaluate(s, ds, seeds=(0, 0)), "seeds has 0 more than once"),
])
def test_python_api_mistakes_are_one_fyi_error(digits, call, says):
    import fyi_apps as fyi

    s = fyi.random_subset(digits, 1)
    with pytest.raises(FyiError) as e:
        call(fyi, digits, s)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_python_api_accepts_what_a_user_has_at_hand(digits, tmp_path):
    import fyi_apps as fyi

    s = fyi.random_subset(digits, 1)
    path = tmp_path / "s.safetensors"
    fyi.save_synset(path, s)
    res = fyi.evaluate(str(path), "digits", arch=["mlp"], seeds=[0], cfg={"epochs": 2, "dsa": False})
    assert list(res) == ["mlp"] and 0 <= res["mlp"].mean <= 1
    assert fyi.NasConfig(proxies="random").proxies == ["random"]  # one string is one proxy, not six letters
    assert fyi.NasConfig(include="vgg11,resnet18").include == ["vgg11", "resnet18"]
    assert fyi.NasConfig(curve="5,10").curve == [5, 10] and fyi.NasConfig(topk="5,10%").topk == [5, "10%"]
    assert fyi.random_subset("digits", 1).dataset == "digits"  # a dataset name, as fyi.evaluate takes


def test_a_changed_expert_file_or_index_is_named(digits, tmp_path):
    from fyi_apps.distill.experts import ExpertConfig, ExpertStore, train_experts

    folder = tmp_path / "experts"
    train_experts(ExpertConfig(dataset="digits", experts=1, epochs=1, arch="mlp", batch_size=256,
                               train_per_class=5), digits, folder, progress=False)
    store = ExpertStore(folder)
    first = store.load(0, [0, 1])
    f = folder / store.experts[0]["file"]
    data = bytearray(f.read_bytes())
    data[-5] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(FyiError, match="does not match the hash"):
        ExpertStore(folder).load(0, [0, 1])
    index = folder / "experts.json"
    index.write_text(index.read_text().replace('"epochs": 1', '"epochs": 9', 1))
    with pytest.raises(FyiError, match="not usable"):
        ExpertStore(folder)
    assert first.shape[0] == 2


@pytest.mark.parametrize("sig, code, says", [("SIGTERM", 143, "stopped by SIGTERM"), ("SIGINT", 130, "interrupted")])
def test_a_stop_says_what_is_kept_and_how_to_resume(tmp_path, sig, code, says):
    import signal
    import time

    out = tmp_path / "s.safetensors"
    cmd = [sys.executable, "-m", "fyi_apps.cli", "distill", "--dataset", "digits", "--method", "dm", "--ipc", "2",
           "--iterations", "100000", "--checkpoint-every", "5", "--arch", "mlp", "-o", str(out), "--device", "cpu",
           "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "s.ckpt.pt"
    for _ in range(3000):  # a loaded machine may take a minute or more to the first checkpoint
        if ckpt.exists():
            break
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(getattr(signal, sig))
    err = proc.communicate(timeout=60)[1].strip().splitlines()
    assert proc.returncode == code
    assert len(err) == 1 and err[0].startswith(f"fyi: {says}; kept the checkpoint ")
    assert err[0].endswith(f"-o {out} --device cpu --quiet --resume") and str(ckpt) in err[0]


def test_a_damaged_online_memory_cache_is_distilled_again(digits, tmp_path, capsys):
    from fyi_apps.tasks import continual as cl

    cfg = cl.CLConfig(benchmark="split-digits", buffers=["dm"], seeds=[0], ipc=1, epochs=2, arch="mlp",
                      iterations={"dm": 3, "dsa": 1, "dc": 1}, distill_cache=str(tmp_path / "cache"))
    first = cl.run_experiment(cfg, device="cpu", progress=False)
    files = sorted((tmp_path / "cache").glob("*.safetensors"))
    assert files
    data = bytearray(files[0].read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the stored images
    files[0].write_bytes(bytes(data))
    again = cl.run_experiment(cfg, device="cpu", progress=False)
    err = capsys.readouterr().err
    assert f"cached online distillation {files[0]} is not usable" in err and "distilled again" in err
    assert "re-create or re-download" not in err  # a cache the user never made: no advice to re-make it
    assert again["aggregate"]["dm"]["final_acc"] == first["aggregate"]["dm"]["final_acc"]


def test_a_write_failure_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    import errno

    from fyi_apps import runtime
    from fyi_apps import synset as synset_pkg
    from fyi_apps.cli import main

    def full_disk(path, synset):
        raise runtime.write_failure(path, OSError(errno.ENOSPC, "No space left on device"), "synthetic-set file")

    monkeypatch.setattr(synset_pkg, "save_synset", full_disk)
    monkeypatch.setattr(runtime, "_KEPT", {})
    out = tmp_path / "s.safetensors"
    code = main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--iterations", "4",
                 "--checkpoint-every", "2", "-o", str(out), "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "no space left on device" in err[0] and f"kept the checkpoint {tmp_path / 's.ckpt.pt'}" in err[0]
    assert err[0].endswith("--resume")


def test_a_changed_partial_expert_state_is_named_and_the_expert_trained_again(digits, tmp_path, capsys):
    from fyi_apps.distill.experts import ExpertConfig, train_experts

    cfg = ExpertConfig(dataset="digits", experts=2, epochs=3, arch="mlp", batch_size=256, train_per_class=5)
    whole = train_experts(cfg, digits, tmp_path / "whole", progress=False)
    train_experts(cfg, digits, tmp_path / "cut", progress=False, stop_after=(1, 2))
    part = tmp_path / "cut" / "expert_00001.partial.pt"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the middle of the saved state
    part.write_bytes(bytes(data))
    again = train_experts(cfg, digits, tmp_path / "cut", progress=False)
    err = capsys.readouterr().err
    assert f"partial expert state {part} is not usable" in err and "expert 1 starts over" in err
    assert torch.equal(again.trajectory(1), whole.trajectory(1))  # not resumed from the changed state


def test_a_changed_zca_cache_is_named_and_fitted_again(digits, tmp_path, monkeypatch, capsys):
    from fyi_apps.zca import zca_for_dataset

    monkeypatch.setenv("FYI_CACHE", str(tmp_path))
    first = zca_for_dataset(digits)
    path, = (tmp_path / "zca").glob("*.safetensors")
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x01  # inside the stored matrices
    path.write_bytes(bytes(data))
    again = zca_for_dataset(digits)
    assert f"ZCA cache {path} is not usable (its content hash does not match)" in capsys.readouterr().err
    assert torch.equal(again.matrix, first.matrix)


def test_a_stopped_experts_run_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch, capsys):
    from fyi_apps import runtime
    from fyi_apps.cli import main
    from fyi_apps.distill import experts

    epoch, calls = experts._Trainer.epoch, []

    def stopped(self, *a, **k):
        calls.append(1)
        if len(calls) == 5:  # expert 1, after its first epoch (expert 0 took three)
            raise KeyboardInterrupt
        return epoch(self, *a, **k)

    monkeypatch.setattr(experts._Trainer, "epoch", stopped)
    monkeypatch.setattr(runtime, "_KEPT", {})
    out = tmp_path / "exp"
    argv = ["experts", "--dataset", "digits", "--experts", "2", "--epochs", "3", "--arch", "mlp", "--train-per-class",
            "5", "-o", str(out), "--device", "cpu", "--quiet"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fyi: interrupted; kept 1 finished expert(s) and expert 1 up to epoch 1 in {out}; to resume, "
                   f"run: fyi {' '.join(argv)}"]


def test_a_stop_while_the_command_starts_is_one_line(monkeypatch, capsys):
    from fyi_apps import cli

    def slow_import(argv=None):
        raise KeyboardInterrupt  # Ctrl-C while the command's module (torch) is being imported

    monkeypatch.setattr(cli, "build_parser", slow_import)
    assert cli.main(["eval", "s.safetensors", "--dataset", "digits"]) == 130
    assert capsys.readouterr().err == "fyi: interrupted while starting (nothing ran)\n"
    assert cli.main(["distill", "--dataset", "digits", "--method", "dm", "-o", "s.safetensors", "--resume"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fyi: interrupted while starting (nothing ran); what an earlier "
                                                   "run kept (checkpoint, records) is untouched")


def _dm_argv(out, *more):
    return ["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--iterations", "6", "--checkpoint-every",
            "2", "--arch", "mlp", "-o", str(out), "--device", "cpu", "--quiet", "--no-grid", *more]


def test_a_checkpoint_is_sealed_and_never_overwritten_by_a_run_that_does_not_resume(digits, tmp_path):
    from fyi_apps.distill import DistillConfig, Distiller

    cfg = DistillConfig("dm", "digits", 1, iterations=6, checkpoint_every=2, arch="mlp")
    out = tmp_path / "s.safetensors"
    Distiller(cfg, digits, device="cpu").run(out, progress=False, stop_after=2)
    ckpt = tmp_path / "s.ckpt.pt"
    with pytest.raises(FyiError, match=f"{ckpt} holds the checkpoint of an earlier, unfinished run.*add resume"):
        Distiller(cfg, digits, device="cpu").run(out, progress=False)  # forgot resume: the progress is kept
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01
    ckpt.write_bytes(bytes(data))
    with pytest.raises(FyiError, match=r"checkpoint .* is not usable \(its content hash does not match"):
        Distiller(cfg, digits, device="cpu").run(out, progress=False, resume=True)


def test_a_run_with_new_settings_replaces_a_checkpoint_it_could_not_resume_and_says_so(digits, tmp_path, capsys):
    from fyi_apps.distill import DistillConfig, Distiller

    cfg = DistillConfig("dm", "digits", 1, iterations=6, checkpoint_every=2, arch="mlp")
    out = tmp_path / "s.safetensors"
    Distiller(cfg, digits, device="cpu").run(out, progress=False, stop_after=2)
    capsys.readouterr()
    lower = DistillConfig("dm", "digits", 1, iterations=6, checkpoint_every=2, arch="mlp", lr_img=0.5)
    s = Distiller(lower, digits, device="cpu").run(out, progress=False)  # advice followed: "lower --lr-img"
    assert s is not None and out.exists() and not (tmp_path / "s.ckpt.pt").exists()
    assert capsys.readouterr().err.strip() == (f"fyi: warning: checkpoint {tmp_path / 's.ckpt.pt'} was made with "
                                               "other settings (lr_img); this run starts over and replaces it")


def test_a_resumed_run_stopped_before_its_next_checkpoint_names_the_one_it_resumed(tmp_path, monkeypatch, capsys):
    from fyi_apps import runtime
    from fyi_apps.cli import main
    from fyi_apps.distill.dm import DM

    out = tmp_path / "s.safetensors"
    assert main(_dm_argv(out, "--iterations", "2")) == 0 and not (tmp_path / "s.ckpt.pt").exists()
    monkeypatch.setattr(runtime, "_KEPT", {})
    step, calls, stop_at = DM.step, [], [3]

    def stopped(self, it):
        calls.append(it)
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt
        return step(self, it)

    monkeypatch.setattr(DM, "step", stopped)
    assert main(_dm_argv(out)) == 130  # stopped after the checkpoint of iteration 2
    monkeypatch.setattr(runtime, "_KEPT", {})
    calls.clear()
    stop_at[0] = 1
    capsys.readouterr()
    assert main(_dm_argv(out, "--resume")) == 130  # resumed at 2, stopped in its first iteration
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fyi: interrupted; kept the checkpoint {tmp_path / 's.ckpt.pt'} (iteration 2 of 6); to resume, "
                   f"run: fyi {' '.join(_dm_argv(out, '--resume'))}"]
    assert main(_dm_argv(out)) == 2  # and a run that forgot --resume does not overwrite it
    assert "add --resume to continue it" in capsys.readouterr().err


def test_a_checkpoint_write_failure_gives_the_resume_command(tmp_path, monkeypatch, capsys):
    import errno

    from fyi_apps import runtime
    from fyi_apps.cli import main
    from fyi_apps.distill import checkpoint

    save, calls = checkpoint.save_sealed_torch, []

    def full_after_one(path, obj, what="file"):
        calls.append(path)
        if len(calls) == 2:
            raise runtime.write_failure(path, OSError(errno.ENOSPC, "No space left on device"), what)
        return save(path, obj, what)

    monkeypatch.setattr(checkpoint, "save_sealed_torch", full_after_one)
    monkeypatch.setattr(runtime, "_KEPT", {})
    out = tmp_path / "s.safetensors"
    assert main(_dm_argv(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    ckpt = tmp_path / "s.ckpt.pt"
    assert err == [f"fyi: error: could not write checkpoint {ckpt}: no space left on device; free some space or write "
                   f"to another folder; kept the checkpoint {ckpt} (iteration 2 of 6); to resume, run: fyi "
                   f"{' '.join(_dm_argv(out))} --resume"]


def test_a_periodic_callback_that_would_never_run_is_said(digits, capsys):
    from fyi_apps.distill import distill

    distill("dm", digits, ipc=1, iterations=2, eval_every=5, batch_real=8, arch="mlp", progress=False)
    assert capsys.readouterr().err.strip() == ("fyi: warning: eval_every=5 is more than iterations=2, so it never "
                                               "runs; use eval_every=2 or less")


def test_resume_without_a_checkpoint_says_it_starts_over(tmp_path, capsys):
    from fyi_apps.cli import main

    out = tmp_path / "typo.safetensors"
    assert main(_dm_argv(out, "--iterations", "2", "--resume")) == 0
    assert capsys.readouterr().err.strip() == (f"fyi: warning: --resume found no checkpoint {tmp_path / 'typo.ckpt.pt'} "
                                               "(a finished run removes it); starting from iteration 0")
