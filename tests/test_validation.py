"""Every bad input is one line and exit 2 (CLI) or one FyiError (Python): issue 16.

Defect classes: numbers and names checked where input enters, typed method
options, write failures (full disk, read-only folder) as one line with nothing
half-written, output targets checked before any compute, file names made safe
from dataset specs, and messages whose fix works.
"""
import argparse
import errno
import math
import os
import re
import subprocess

import pytest
import torch

from fyi_apps import validate
from fyi_apps.cli import build_parser, main
from fyi_apps.distill import DistillConfig, Distiller, distill, resolve_config
from fyi_apps.records import load_sealed_torch
from fyi_apps.errors import FyiError
from fyi_apps.networks import check_model_names

ARCH = "convnet:width=8,depth=2"


# --------------------------------------------------------------------------- helpers
def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(*folders):
    return sorted(str(p) for f in folders for p in f.rglob("*"))


def assert_one_line(code, err, needle=None):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("fyi: error:"), err
    assert "Traceback" not in err
    if needle:
        assert re.search(needle, lines[0], re.I), lines[0]
    return lines[0]


@pytest.fixture
def no_compute(monkeypatch):
    """Any training, distillation step or score makes the test fail: errors must come first."""
    import sys

    import fyi_apps.evaluate  # noqa: F401  (the module; fyi_apps.evaluate is the function)

    evaluate = sys.modules["fyi_apps.evaluate"]
    from fyi_apps.distill import dc, dm, score

    def forbidden(*a, **k):
        raise AssertionError("compute started before the input/output check")

    monkeypatch.setattr(dm.DM, "step", forbidden)
    monkeypatch.setattr(dc.DC, "step", forbidden)
    monkeypatch.setattr(evaluate, "train_network", forbidden)
    monkeypatch.setattr(score, "unequalness", forbidden)
    monkeypatch.setattr(score, "unequalness_curve", forbidden)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A synthetic set, a plain file and a folder to pass where they do not belong."""
    folder = tmp_path_factory.mktemp("inputs")
    synset = folder / "rand.safetensors"
    assert main(["baseline", "--dataset", "digits", "--ipc", "1", "-o", str(synset), "--out", str(folder)]) == 0
    (folder / "plain.txt").write_text("not a folder\n")
    (folder / "adir").mkdir()
    return {"SYNSET": synset, "FILE": folder / "plain.txt", "DIR": folder / "adir", "ROOT": folder}


def _mount_tmpfs(path, options):
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _fill(folder):
    """Write zeros into ``folder`` until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


@pytest.fixture
def full_disk(tmp_path):
    mnt = tmp_path / "full"
    if not _mount_tmpfs(mnt, "size=256k"):
        pytest.skip("needs root and `mount` for a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def read_only(tmp_path):
    """A folder nobody may write to: a read-only tmpfs as root, a chmod-ed folder otherwise."""
    ro = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(ro, "ro,size=64k"):
            pytest.skip("running as root (chmod does not stop root) and `mount` is not available")
        try:
            yield ro
        finally:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        return
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").write_text("x")
        pytest.skip("chmod does not stop writes here")
    except OSError:
        pass
    yield ro
    ro.chmod(0o755)


def _sub(argv, inputs):
    """Fill in the placeholders SYNSET, FILE, DIR (also as FILE/...) with the prepared inputs."""
    out = []
    for a in argv:
        head, sep, tail = a.partition("/")
        out.append(str(inputs[head]) + sep + tail if head in inputs else a)
    return out


# --------------------------------------------------------------------------- every command, bad arguments
DISTILL = ["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1"]
BAD_ARGS = [
    ["bogus"],
    ["--seed", "x", "data"],
    ["data", "digits", "--seed", "-1"],
    ["data", "nope"],
    ["data", "digits", "--bogus"],
    ["baseline", "--dataset", "digits", "--ipc", "0"],
    ["baseline", "--dataset", "digits", "--ipc", "abc"],
    ["baseline", "--dataset", "digits", "--ipc", "1", "--herding-epochs", "-1"],
    ["baseline", "--dataset", "digits"],
    ["baseline", "--dataset", "digits", "--ipc", "1", "-o", "DIR"],
    ["eval", "random", "--dataset", "digits", "--ipc", "1", "--seeds", "0"],
    ["eval", "random", "--dataset", "digits", "--ipc", "1", "--epochs", "0"],
    ["eval", "random", "--dataset", "digits", "--ipc", "1", "--batch-size", "0"],
    ["eval", "random", "--dataset", "digits", "--ipc", "1", "--lr", "nan"],
    ["eval", "random", "--dataset", "digits", "--ipc", "0"],
    ["eval", "random", "--ipc", "1"],
    ["eval", "missing.safetensors"],
    ["eval", "DIR"],
    ["eval", "SYNSET", "--json", "DIR"],
    ["eval", "SYNSET", "--arch", ","],
    ["show", "missing.safetensors"],
    ["show", "SYNSET", "--max-per-class", "0"],
    ["show", "SYNSET", "-o", "DIR"],
    ["export", "SYNSET", "FILE"],
    ["export", "missing.safetensors", "x"],
    ["import", "missing.pt"],
    ["import", "SYNSET", "--format", "zzz"],
    ["score", "--dataset", "digits", "--sizes", "1,abc"],
    ["score", "--dataset", "digits", "--sizes", ","],
    ["score", "--dataset", "digits", "--nets", "0"],
    ["score", "--dataset", "digits", "--repeats", "0"],
    ["score", "--dataset", "digits", "--sizes", "100000"],
    ["score", "SYNSET", "--distance", "dx"],
    ["score", "SYNSET", "--view", "zzz"],
    ["score"],
    ["quickstart", "--budget", "huge"],
    DISTILL[:-1] + ["0"],
    DISTILL + ["--lr-img", "-1"],
    DISTILL + ["--lr-img", "nan"],
    DISTILL + ["--iterations", "0"],
    DISTILL + ["--batch-real", "0"],
    DISTILL + ["--checkpoint-every", "0"],
    DISTILL + ["--checkpoint-every", "-5"],
    DISTILL + ["--score-every", "-1"],
    DISTILL + ["--option", "outer_loop=10"],
    DISTILL + ["--option", "noequals"],
    DISTILL + ["--option", "real_chunk=0"],
    DISTILL + ["--fyi", "mirror"],
    DISTILL + ["--init", "zero"],
    DISTILL + ["--fyi", ""],
    DISTILL + ["--arch", "zzz"],
    DISTILL + ["--ipc", "1e3"],
    DISTILL + ["-o", "FILE/x.safetensors"],
    DISTILL + ["-o", "DIR"],
    ["distill", "--dataset", "digits", "--method", "dc", "--ipc", "1", "--option", "outer_loop=abc"],
    ["distill", "--dataset", "digits", "--method", "dc", "--ipc", "1", "--option", "outer_loop=0"],
    ["distill", "--dataset", "digits", "--method", "dc", "--ipc", "1", "--option", "outer_lop=10"],
    ["distill", "--dataset", "digits", "--method", "mtt", "--ipc", "1", "--buffers", "FILE"],
    ["distill", "--dataset", "digits", "--method", "zzz", "--ipc", "1"],
    ["distill", "--dataset", "digits"],
    ["buffers", "--dataset", "digits", "--experts", "0"],
    ["buffers", "--dataset", "digits", "--epochs", "0"],
    ["buffers", "--dataset", "digits", "--lr-teacher", "0"],
    ["buffers", "--dataset", "digits", "--train-per-class", "0"],
    ["buffers", "--dataset", "digits", "--dtype", "int8"],
    ["cl", "--seeds", "0"],
    ["cl", "--ipc", "0"],
    ["cl", "--herding-epochs", "-1"],
    ["cl", "--iterations", "dm=0"],
    ["cl", "--iterations", "dn=5"],
    ["cl", "--lr-img", "nan"],
    ["nas", "--dataset", "digits", "--seeds", "abc"],
    ["nas"],
    ["xarch"],
    ["xarch", "SYNSET", "--epochs", "abc"],
]


@pytest.mark.parametrize("argv", BAD_ARGS, ids=lambda a: " ".join(a)[:60])
def test_every_command_refuses_bad_arguments_in_one_line(capsys, tmp_path, inputs, no_compute, argv):
    out = tmp_path / "out"
    before = files_under(inputs["ROOT"])
    code, _, err = run(capsys, *_sub(argv, inputs), "--out", out, "--quiet")
    assert_one_line(code, err)
    assert not out.exists() or files_under(out) == []
    assert files_under(inputs["ROOT"]) == before


@pytest.mark.parametrize("argv,needle", [
    (DISTILL + ["--option", "outer_loop=10"], r"dm has no option 'outer_loop' .*options: real_chunk"),
    (["distill", "--dataset", "digits", "--method", "dc", "--ipc", "1", "--option", "outer_lop=10"],
     r"did you mean outer_loop\?.*inner_loop"),
    (["distill", "--dataset", "digits", "--method", "dc", "--ipc", "1", "--option", "outer_loop=abc"],
     r"outer_loop must be a positive integer, got 'abc'"),
    (DISTILL + ["--lr-img", "nan"], r"--lr-img: must be a finite number > 0, got 'nan'"),
    (["score", "--dataset", "digits", "--sizes", "1,abc"], r"--sizes: .*entry 'abc'"),
    (["distill", "--dataset", "digits", "--method", "mtt", "--ipc", "1", "--buffers", "FILE"], r"is a file, not a folder"),
    (DISTILL + ["-o", "DIR"], r"is a folder; give a file name"),
    (["import", "SYNSET", "--format", "zzz"], r"invalid choice"),
])
def test_messages_name_the_value_the_rule_and_the_fix(capsys, tmp_path, inputs, no_compute, argv, needle):
    code, _, err = run(capsys, *_sub(argv, inputs), "--out", tmp_path / "out")
    assert_one_line(code, err, needle)


# --------------------------------------------------------------------------- the Python API
def _distill(**kw):
    kw = {"ipc": 1, "iterations": 1, "progress": False, **kw}
    return lambda: distill("dm", "digits", **kw)


@pytest.mark.parametrize("call,needle", [
    (_distill(ipc="2"), r"ipc must be a positive integer, got '2'"),
    (_distill(ipc=2.5), r"ipc must be a positive integer"),
    (_distill(iteration=2), r"no option 'iteration' \(did you mean iterations\?\)"),
    (_distill(iterations=0), r"iterations must be a positive integer"),
    (_distill(lr_img=-1), r"lr_img must be a finite number > 0"),
    (_distill(lr_img=math.nan), r"lr_img must be a finite number > 0, got nan"),
    (_distill(batch_real=0), r"batch_real"),
    (_distill(checkpoint_every=0), r"checkpoint_every"),
    (_distill(seed=-1), r"seed"),
    (_distill(fyi=3), r"fyi must be"),
    (_distill(options={"real_chunk": "many"}), r"real_chunk"),
    (lambda: distill("dm", 42, ipc=1), r"dataset must be a dataset name"),
    (lambda: resolve_config(DistillConfig("dc", "digits", 1, options={"outer_loop": "10"})), r"outer_loop"),
    (lambda: resolve_config(DistillConfig("dc", "digits", 1, options={"fyi_inner": "maybe"})), r"true or false"),
    (lambda: resolve_config(DistillConfig("idc", "digits", 1, options={"mix_p": 1.5})), r"mix_p"),
    (lambda: resolve_config(DistillConfig("ftd", "digits", 1, options={"ema_decay": 1.0})), r"ema_decay"),
    (lambda: resolve_config(DistillConfig("mtt", "digits", 1, options={"syn_step": 2})), r"did you mean syn_steps"),
])
def test_python_api_refuses_bad_arguments_with_fyierror(call, needle):
    with pytest.raises(FyiError, match=needle):
        call()


@pytest.mark.parametrize("kw", [dict(epochs=0), dict(batch_size=0), dict(lr=math.nan), dict(lr=-1.0),
                                dict(cutmix=2.0), dict(epochs="10"), dict(dsa_mode="both")])
def test_eval_config_refuses_bad_settings(kw):
    from fyi_apps.evaluate import EvalConfig

    with pytest.raises(FyiError, match=next(iter(kw))):
        EvalConfig(**kw)


def test_score_api_refuses_bad_counts(digits):
    from fyi_apps.distill.score import unequalness, unequalness_curve

    with pytest.raises(FyiError, match="num_nets"):
        unequalness(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), 10, num_nets=0)
    with pytest.raises(FyiError, match="sizes"):
        unequalness_curve(digits, [1, "abc"])


def test_typed_options_resolve_once_and_freeze():
    from fyi_apps.distill import METHODS, option_names

    for name, cls in METHODS.items():  # every method's defaults and presets pass its own checks
        cfg = resolve_config(DistillConfig(name, "cifar10", 10))
        assert set(cfg.options) == set(option_names(name)) == set(cls.Options.names())
        assert resolve_config(cfg) is cfg
    cfg = resolve_config(DistillConfig("dc", "digits", 10))
    assert (cfg.options["outer_loop"], cfg.options["inner_loop"]) == (10, 50)  # the IPC preset
    with pytest.raises(FyiError, match="frozen"):
        cfg.ipc = 2


# --------------------------------------------------------------------------- write failures
WRITES = [
    ["baseline", "--dataset", "digits", "--ipc", "1", "-o", "TARGET/r.safetensors"],
    ["data", "digits", "--out", "TARGET"],
    ["eval", "SYNSET", "--epochs", "1", "--seeds", "1", "--no-dsa", "--json", "TARGET/e.json"],
    ["export", "SYNSET", "TARGET/folder"],
    ["show", "SYNSET", "-o", "TARGET/grid.png"],
    ["score", "SYNSET", "--nets", "1", "--json", "TARGET/s.json"],
    DISTILL + ["--iterations", "2", "--batch-real", "8", "-o", "TARGET/d.safetensors"],
]


def _temp_files(folder):
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.mark.parametrize("argv", WRITES, ids=lambda a: a[0])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(capsys, inputs, full_disk, argv):
    _fill(full_disk)
    argv = [a.replace("TARGET", str(full_disk)) for a in _sub(argv, inputs)]
    code, _, err = run(capsys, *argv, "--quiet")
    assert_one_line(code, err, "no space left on device")
    assert _temp_files(full_disk) == []
    assert [p.name for p in full_disk.iterdir()] == ["filler"]


@pytest.mark.parametrize("argv", WRITES, ids=lambda a: a[0])
def test_a_read_only_target_fails_before_any_compute(capsys, inputs, read_only, no_compute, argv):
    argv = [a.replace("TARGET", str(read_only / "sub")) for a in _sub(argv, inputs)]
    code, _, err = run(capsys, *argv, "--quiet", "--out", read_only)
    assert_one_line(code, err, "read-only file system|permission denied")
    assert list(read_only.iterdir()) == []


def test_the_last_good_checkpoint_survives_a_full_disk(digits, full_disk, monkeypatch):
    write = Distiller._write_checkpoint
    calls = []

    def filling(self, path, it):
        calls.append(it)
        if len(calls) == 3:
            _fill(full_disk)
        return write(self, path, it)

    monkeypatch.setattr(Distiller, "_write_checkpoint", filling)
    cfg = DistillConfig("dm", "digits", 1, iterations=5, batch_real=8, checkpoint_every=1, arch=ARCH)
    out = full_disk / "dm.safetensors"
    with pytest.raises(FyiError, match=r"no space left on device.*still holds the checkpoint of iteration 2"):
        Distiller(cfg, digits, device="cpu").run(out, progress=False)
    ckpt = full_disk / "dm.ckpt.pt"
    assert load_sealed_torch(ckpt, weights_only=False)["iteration"] == 2
    assert _temp_files(full_disk) == [] and not out.exists()


def test_torch_and_os_write_errors_become_one_line_without_root(tmp_path, monkeypatch):
    from fyi_apps import runtime

    target = tmp_path / "state.pt"
    runtime.save_torch(target, {"v": 1})

    def broken(obj, f, *a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(runtime.torch, "save", broken)
    with pytest.raises(FyiError, match=r"could not write checkpoint .*state\.pt"):
        runtime.save_torch(target, {"v": 2}, what="checkpoint")
    monkeypatch.setattr(runtime.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EROFS, "ro")))
    with pytest.raises(FyiError, match="read-only file system"):
        runtime.write_json(tmp_path / "x.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]
    assert torch.load(target)["v"] == 1  # the earlier file is untouched


# --------------------------------------------------------------------------- file names and messages
def test_dataset_specs_with_paths_make_flat_file_names(capsys, tmp_path):
    from PIL import Image

    from fyi_apps.distill.base import default_output

    folder = tmp_path / "imgs"
    for split in ("train", "test"):
        for c in ("a", "b"):
            (folder / split / c).mkdir(parents=True)
            for i in range(2):
                Image.new("L", (8, 8), color=40 * i + (100 if c == "a" else 0)).save(folder / split / c / f"{i}.png")
    out = tmp_path / "out"
    code, _, err = run(capsys, "data", f"imagefolder:{folder}", "--out", out)
    assert code == 0, err
    (made,) = list(out.iterdir())
    assert made.is_file() and made.name.startswith("data-imagefolder") and "/" not in made.name[5:]
    path = default_output(DistillConfig("dm", f"imagefolder:{folder}", 1), tmp_path)
    assert path.parent == tmp_path / "distill"
    assert validate.safe_name("digits") == "digits" and validate.safe_name("a/../b") == "a-..-b"


def test_nan_message_reports_the_cause_and_a_fix_that_applies(digits, monkeypatch):
    from fyi_apps.distill.dm import DM

    def poison(self, it):
        with torch.no_grad():
            self.images.fill_(float("nan"))
        return {"loss": 0.838}

    monkeypatch.setattr(DM, "step", poison)
    for init, hint in (("real", False), ("noise", True)):
        cfg = DistillConfig("dm", "digits", 1, iterations=2, batch_real=8, init=init, arch=ARCH)
        with pytest.raises(FyiError, match="synthetic images became NaN") as e:
            Distiller(cfg, digits, device="cpu").run(None, progress=False)
        assert ("init=real" in str(e.value)) is hint and "lr_img" in str(e.value)


@pytest.fixture(scope="module")
def experts(digits, tmp_path_factory):
    from fyi_apps.distill.experts import ExpertConfig, train_experts

    folder = tmp_path_factory.mktemp("experts")
    train_experts(ExpertConfig(dataset="digits", experts=1, epochs=2, arch=ARCH, lr_teacher=0.1, batch_size=128,
                               train_per_class=10), digits, folder, progress=False)
    return folder


@pytest.mark.parametrize("bad", [{"expert_epochs": 3, "max_start_epoch": 1}, {"expert_epochs": 1, "max_start_epoch": 5},
                                 {"expert_epochs": 2, "max_start_epoch": 2}])
def test_trajectory_length_message_suggests_a_value_that_works(digits, experts, bad):
    def make(**opts):
        cfg = DistillConfig("mtt", "digits", 1, iterations=1, arch=ARCH, lr_img=10.0,
                            options={"experts": str(experts), "syn_steps": 2, **opts})
        return Distiller(cfg, digits, device="cpu")

    with pytest.raises(FyiError, match="store 2 epochs") as e:
        make(**bad)
    from fyi_apps.errors import command_line

    with command_line():  # the advice in the command line's words
        suggested = {k: int(v) for k, v in re.findall(r"--option (\w+)=(\d+)", str(e.value))}
    assert set(suggested) == {"expert_epochs", "max_start_epoch", "syn_steps"}
    assert any(suggested[k] != v for k, v in bad.items())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole suggested set fits: no error, not even a warning
        make(**suggested)


def test_unpickling_hint_names_an_option_that_exists(capsys, tmp_path):
    path = tmp_path / "res_x.pt"
    torch.save({"data": [[torch.zeros(10, 1, 8, 8), torch.arange(10)]], "extra": argparse.Namespace(a=1)}, path)
    code, _, err = run(capsys, "import", path, "--dataset", "digits", "--out", tmp_path / "out")
    line = assert_one_line(code, err, "--trust")
    flag = re.search(r"fyi import (--\w+)", line).group(1)
    assert build_parser().parse_args(["import", str(path), flag]).trust is True


def test_nas_names_unknown_models_as_unknown_and_unfit_ones_by_their_reason():
    with pytest.raises(FyiError, match=r"include: 'vgg1' cannot be used: unknown model 'vgg1' \(did you mean vgg11"):
        check_model_names(["vgg11", "vgg1"], "--include", channels=1, image_size=8)
    with pytest.raises(FyiError, match=r"cannot run at image size 8"):
        check_model_names(["convnet:depth=4"], "--include", channels=1, image_size=8)
    with pytest.raises(FyiError, match=r"space: 'convnt' .*unknown model"):  # a typo in a space list
        check_model_names(["convnet:depth=4", "convnt"], "--space", channels=1, image_size=8, must_fit=False)
    assert check_model_names(["convnet:depth=4"], "--space", channels=1, image_size=8, must_fit=False)


@pytest.mark.parametrize("check,value", [
    (validate.positive_int, "0"), (validate.positive_int, "1.5"), (validate.non_negative_int, "-1"),
    (validate.positive_float, "inf"), (validate.positive_float, "-0.1"), (validate.probability_arg, "1.01"),
    (validate.int_list_arg(), "1,,x"),
])
def test_argparse_types_refuse_with_a_message(check, value):
    with pytest.raises(argparse.ArgumentTypeError, match="got"):
        check(value)


def test_argparse_types_accept_good_values():
    assert validate.positive_int(" 7 ") == 7 and validate.non_negative_int("0") == 0
    assert validate.positive_float("1e-5") == 1e-5 and validate.probability_arg("1") == 1.0
    assert validate.int_list_arg()("1, 2,5") == [1, 2, 5]
    with pytest.raises(FyiError, match="got '3'"):
        validate.integer("3", "x")  # no silent string conversion in Python


@pytest.mark.parametrize("method", ["mtt", "ftd"])
def test_following_the_trajectory_advice_ends_in_a_run_that_works(digits, experts, method):
    """2-epoch experts with the default options: each message's suggested --option values, applied as they
    are, lead to a finished run within two corrections (the advice is checked as a whole, not one at a time)."""
    import warnings

    opts = {"experts": str(experts)}
    for attempt in range(3):
        cfg = DistillConfig(method, "digits", 1, iterations=30, arch=ARCH, options=dict(opts))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Distiller(cfg, digits, device="cpu").run(progress=False)
            break
        except FyiError as e:
            from fyi_apps.errors import command_line

            with command_line():  # the advice in the command line's words
                found = re.findall(r"--option (\w+)=([0-9.e+-]+)", str(e))
            assert found, f"attempt {attempt}: no --option advice in {e}"
            opts.update({k: (float(v) if any(c in v for c in ".e") else int(v)) for k, v in found})
    else:
        pytest.fail(f"still failing after following the advice: {opts}")
    assert attempt <= 2
