"""The `fyi` command line: every command on digits, and one clear line + exit 2 for bad input."""
import json
import subprocess
import sys

import pytest
import torch

from fyi_apps.cli import main
from fyi_apps.synset import load_synset


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_lists_and_checks(capsys, tmp_path):
    code, out, _ = run(capsys, "data", "--out", str(tmp_path))
    assert code == 0 and "cifar10" in out and "digits" in out and "tiny-imagenet" in out
    code, out, _ = run(capsys, "data", "digits", "--extend-flip", "--out", str(tmp_path))
    assert code == 0 and "train (2874, 1, 8, 8)" in out
    payload = json.loads((tmp_path / "data-digits.json").read_text())
    assert sum(payload["train_counts"]) == 2874 and payload["extend_flip"] is True
    assert payload["versions"]["torch"] == torch.__version__


def test_baseline_eval_show_score_export(capsys, tmp_path):
    out = str(tmp_path)
    path = tmp_path / "rand.safetensors"
    code, text, _ = run(capsys, "baseline", "--dataset", "digits", "--ipc", "3", "-o", str(path), "--out", out, "--seed", "5")
    assert code == 0 and path.exists()
    s = load_synset(path)
    assert s.method == "random" and s.ipc == 3 and s.seed == 5

    code, text, _ = run(capsys, "eval", str(path), "--epochs", "5", "--seeds", "2", "--out", out, "--quiet", "--device", "cpu")
    assert code == 0 and "convnet" in text
    res = json.loads((tmp_path / "eval.json").read_text())
    (entry,) = res["results"].values()
    assert len(entry["convnet"]["accs"]) == 2 and entry["convnet"]["epochs"] == 5

    code, text, _ = run(capsys, "eval", "random", "--dataset", "digits", "--ipc", "2", "--epochs", "3", "--seeds", "2",
                        "--arch", "convnet,mlp", "--out", out, "--quiet", "--json", str(tmp_path / "r.json"))
    assert code == 0
    res = json.loads((tmp_path / "r.json").read_text())["results"]["random ipc2 digits"]
    assert set(res) == {"convnet", "mlp"} and res["mlp"]["seeds"] == [0, 1]

    png = tmp_path / "grid.png"
    code, text, _ = run(capsys, "show", str(path), "-o", str(png))
    assert code == 0 and png.stat().st_size > 500

    code, text, _ = run(capsys, "score", str(path), "--distance", "dm,dc", "--nets", "1", "--out", out)
    assert code == 0 and "dc" in text
    code, text, _ = run(capsys, "score", "--dataset", "digits", "--sizes", "1,4", "--nets", "1", "--out", out)
    assert code == 0 and (tmp_path / "score-digits.png").exists()

    code, text, _ = run(capsys, "export", str(path), str(tmp_path / "folder"))
    assert code == 0 and len(list((tmp_path / "folder").rglob("*.png"))) == 30


def test_distill_command_with_resume(capsys, tmp_path):
    out = tmp_path / "dm.safetensors"
    args = ["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--fyi", "--iterations", "3",
            "--batch-real", "16", "-o", str(out), "--quiet", "--resume"]
    code, text, _ = run(capsys, *args)
    assert code == 0 and out.exists() and out.with_name("dm.png").exists()
    s = load_synset(out)
    assert s.fyi == "flip" and s.config["iterations"] == 3 and s.config["batch_real"] == 16


@pytest.mark.parametrize("argv,needle", [
    (["data", "nope"], "unknown dataset 'nope'"),
    (["eval", "missing.safetensors"], "does not exist"),
    (["baseline", "--dataset", "digits", "--ipc", "100000"], "larger than class"),
    (["eval", "random", "--dataset", "digits", "--ipc", "1", "--arch", "resnet99"], "unknown model"),
    (["eval", "random", "--ipc", "1"], "needs --dataset"),
    (["distill", "--dataset", "digits", "--method", "zzz", "--ipc", "1"], "unknown method"),
    (["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1", "--fyi", "mirror"], "unknown FYI view"),
    (["data", "digits", "--device", "cuda:7"], None),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, needle):
    if argv[-1] == "cuda:7" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, out, err = run(capsys, *argv, "--out", str(tmp_path))
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("fyi: error:")]
    assert len(lines) == 1 and "Traceback" not in err
    if needle:
        assert needle in lines[0]


def test_wrong_channels_for_a_synset(capsys, tmp_path):
    path = tmp_path / "digits.safetensors"
    assert main(["baseline", "--dataset", "digits", "--ipc", "1", "-o", str(path), "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    code, _, err = run(capsys, "eval", str(path), "--dataset", "fashion-mnist", "--epochs", "1", "--out", str(tmp_path))
    assert code == 2 and "fyi: error:" in err and ("px" in err or "channel" in err or "not found" in err.lower() or "looked" in err)


def test_corrupt_synset_is_refused(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    code, _, err = run(capsys, "eval", str(bad), "--out", str(tmp_path))
    assert code == 2 and "corrupt" in err


def test_quickstart_tiny(capsys, tmp_path):
    from fyi_apps.quickstart import BUDGETS

    code, out, _ = run(capsys, "quickstart", "--budget", "tiny", "--out", str(tmp_path), "--quiet")
    assert code == 0
    report = (tmp_path / "quickstart" / "report.md").read_text()
    for label in ("random", "dm+fyi", "flip-extended"):
        assert label in report
    assert (tmp_path / "quickstart" / "dm_fyi.png").exists()
    payload = json.loads((tmp_path / "quickstart" / "report.json").read_text())
    assert set(payload["results"]) == {"random", "dm", "dm+fyi", "dm on flip-extended data"}
    seeds = BUDGETS["tiny"]["seeds"]
    for r in payload["results"].values():
        assert len(r["accs"]) == seeds and all(0.0 <= a <= 1.0 for a in r["accs"])
        assert r["mean"] == pytest.approx(sum(r["accs"]) / seeds)
    assert len(payload["results"]["random"]["eval"]) == seeds  # a different random subset per seed
    # the report's reading is the sentence computed from these numbers
    from fyi_apps.quickstart import reading

    assert payload["reading"] == reading(payload["results"], BUDGETS["tiny"]["ipc"])
    assert payload["reading"] in report and payload["reading"] in out


def _row(mean, std):
    return {"mean": mean, "std": std}


def test_quickstart_reading_follows_the_numbers():
    from fyi_apps.quickstart import reading

    res = {"random": _row(0.67, 0.016), "dm": _row(0.86, 0.008), "dm+fyi": _row(0.875, 0.018),
           "dm on flip-extended data": _row(0.74, 0.024)}
    s = reading(res, 1)
    assert s.startswith("At 1 image per class DM (+19.0 points) and DM+FYI (+20.5 points) are ahead of random")
    assert "FYI does not separate from DM at this budget (+1.5 points, within one std)" in s
    assert "flip-extended data instead of flipping S costs DM 12.0 points" in s
    res["dm+fyi"] = _row(0.90, 0.005)
    assert "FYI adds 4.0 points to DM (more than one std)" in reading(res, 1)
    res["dm"] = _row(0.675, 0.01)
    s = reading(res, 10)
    assert s.startswith("At 10 images per class DM (+0.5 points) is level with random real images (within one std) "
                        "and DM+FYI (+23.0 points) is ahead of them")
    res["dm+fyi"] = _row(0.60, 0.01)
    assert "FYI costs DM 7.5 points at this budget" in reading(res, 10)


def test_console_script_help_is_fast_and_works():
    r = subprocess.run([sys.executable, "-m", "fyi_apps.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "distill" in r.stdout and "quickstart" in r.stdout


def test_help_builds_no_command_and_imports_no_torch():
    """`fyi --help` lists the commands without importing torch; a command's own --help builds only it."""
    code = ("import sys, contextlib, io\nfrom fyi_apps.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n    main(['--help'])\n"
            "print('torch' in sys.modules, 'experts (buffers)' in buf.getvalue())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "True"], r.stderr


def test_experts_command_keeps_buffers_as_its_old_name(capsys):
    from fyi_apps.cli import build_parser, selected_command

    assert selected_command(["--seed", "3", "buffers", "--dataset", "x"]).name == "experts"
    assert selected_command(["--out", "distill", "eval", "a.safetensors"]).name == "eval"  # a global's value is skipped
    a = build_parser(["buffers", "--dataset", "digits"]).parse_args(["buffers", "--dataset", "digits"])
    b = build_parser(["experts", "--dataset", "digits"]).parse_args(["experts", "--dataset", "digits"])
    assert a.func.__closure__ and vars(a).keys() == vars(b).keys() and a.dataset == b.dataset == "digits"
    d = build_parser().parse_args(["distill", "--dataset", "d", "--method", "mtt", "--ipc", "1", "--experts", "E"])
    assert d.experts == "E"


def test_every_option_says_its_default_once():
    """`fyi CMD --help`: each option's default appears once (argparse's note is left out where the help gives it)."""
    import argparse
    import re

    from fyi_apps.cli import build_parser

    sub = next(a for a in build_parser(None)._actions if isinstance(a, argparse._SubParsersAction))
    checked = 0
    for name, sp in sub.choices.items():
        fmt = sp._get_formatter()  # the formatter `fyi CMD --help` uses
        for action in sp._actions:
            if (not action.option_strings or action.help in (None, argparse.SUPPRESS) or action.dest == "quiet"
                    or action.default is argparse.SUPPRESS):
                continue
            text = fmt._expand_help(argparse.Action(action.option_strings, action.dest, default=action.default,
                                                    help=fmt._get_help_string(action)))
            assert re.search("default", text, re.I), f"fyi {name} {action.option_strings[0]}: no default in {text!r}"
            assert len(re.findall(r"\(default", text)) <= 1, f"fyi {name} {action.option_strings[0]}: {text!r}"
            checked += 1
    assert checked > 100
