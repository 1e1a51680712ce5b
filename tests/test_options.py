"""A config defines its options once (issue 26): fields carry help, bounds and choices; flags are made from them."""
import argparse
import ast
import dataclasses
import inspect
import re

import pytest

from fyi_apps import options
from fyi_apps.augment import MODES
from fyi_apps.cli import Parser, build_parser, main
from fyi_apps.errors import FyiError, command_line
from fyi_apps.options import OptionError, add_arguments, check_fields, config, flag_of, from_namespace, option


@config
class Toy:
    """A config as a user would write one."""

    name: str = option(help="what to call it")
    epochs: int = option(3, min=1, help="training epochs")
    rate: float | None = option(None, min=0.0, min_open=True, help="step size (default: automatic)")
    mode: str = option("single", choices=MODES, help="one of {choices}")
    dsa: bool = option(True, flag="--no-dsa", help="switch DSA off")
    sizes: list[int] = option(default_factory=lambda: [1, 2], parse=lambda t: [int(x) for x in t.split(",")],
                              cli_default="1,2", help="sizes, comma-separated")

    def __post_init__(self):
        check_fields(self)


def _parser(cls=Toy, **kw):
    p = Parser(prog="toy", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p, cls, **kw)
    return p


def _help(p):
    return " ".join(p.format_help().split())


# --------------------------------------------------------------------------- a field is a flag
def test_a_field_is_a_flag_with_its_help_default_and_choices():
    text = _help(_parser())
    assert "--epochs EPOCHS training epochs (default: 3)" in text
    assert "--mode {single,fyi,all} one of single, fyi, all (default: single)" in text
    assert "--no-dsa switch DSA off (default: False)" in text
    assert "--sizes SIZES sizes, comma-separated (default: 1,2)" in text
    assert "--name NAME" in text and "required" not in text


def test_adding_a_field_adds_a_flag():
    @config
    class Bigger(Toy):
        width: int = option(64, min=8, max=512, help="channels of the first layer")

    p = _parser(Bigger)
    assert "--width WIDTH channels of the first layer (default: 64)" in _help(p)
    cfg = from_namespace(Bigger, p.parse_args(["--name", "x", "--width", "128"]))
    assert cfg.width == 128 and cfg.epochs == 3


def test_exclude_and_only_pick_fields():
    assert "--epochs" not in _help(_parser(exclude=("epochs",)))
    text = _help(_parser(only=("epochs", "mode")))
    assert "--epochs" in text and "--mode" in text and "--rate" not in text
    with pytest.raises(TypeError, match="no field"):
        _parser(only=("epoch",))


# --------------------------------------------------------------------------- one refusal, two wordings
@pytest.mark.parametrize("kw,says", [
    ({"epochs": 0}, r"^epochs must be a positive integer, got 0"),
    ({"epochs": "3"}, r"^epochs must be a positive integer, got '3'"),
    ({"rate": -1.0}, r"^rate must be a finite number > 0"),
    ({"mode": "both"}, r"^mode must be one of single, fyi, all, got 'both'"),
    ({"dsa": "maybe"}, r"^dsa must be true or false"),
    ({"sizes": "1,2"}, r"^sizes must be a list"),
])
def test_python_callers_get_one_line_naming_the_field(kw, says):
    with pytest.raises(OptionError, match=says) as e:
        Toy(name="x", **kw)
    assert "\n" not in str(e.value) and e.value.field == next(iter(kw))


@pytest.mark.parametrize("argv,says", [
    (["--epochs", "0"], r"argument --epochs: must be a positive integer, got 0"),
    (["--rate", "nan"], r"argument --rate: must be a finite number > 0, got 'nan'"),
    (["--mode", "both"], r"argument --mode: invalid choice: 'both'"),
])
def test_command_line_users_get_one_line_naming_the_flag(argv, says):
    with command_line(), pytest.raises(FyiError, match=says):  # as `fyi` runs it: errors in the command line's words
        _parser().parse_args(["--name", "x", *argv])


def test_a_refusal_left_to_the_validator_names_the_flag_from_the_command_line():
    ns = argparse.Namespace(name="x", epochs=3, rate=None, mode="single", no_dsa=False, sizes="1,-2")

    @config
    class Positive(Toy):
        def __post_init__(self):
            check_fields(self)
            if min(self.sizes) < 1:
                raise OptionError(f"sizes must be positive, got {self.sizes}", "sizes")

    with command_line(), pytest.raises(FyiError, match=r"^--sizes must be positive"):
        from_namespace(Positive, ns)
    with pytest.raises(FyiError, match=r"^sizes must be positive"):
        Positive(name="x", sizes=[1, -2])


def test_distill_ipc_is_refused_by_its_field_and_by_its_flag(capsys, tmp_path):
    from fyi_apps.distill import DistillConfig

    with pytest.raises(FyiError, match=r"^ipc must be a positive integer, got 0"):
        DistillConfig("dm", "digits", 0)
    code = main(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("fyi: error: argument --ipc: must be a positive integer, got 0")


# --------------------------------------------------------------------------- namespace -> config
def test_round_trip_namespace_to_config():
    p = _parser()
    assert from_namespace(Toy, p.parse_args(["--name", "x"])) == Toy(name="x")
    cfg = from_namespace(Toy, p.parse_args(["--name", "x", "--epochs", "7", "--rate", "0.5", "--mode", "all",
                                            "--no-dsa", "--sizes", "4,5"]))
    assert cfg == Toy(name="x", epochs=7, rate=0.5, mode="all", dsa=False, sizes=[4, 5])
    assert from_namespace(Toy, p.parse_args(["--name", "x"]), epochs=9).epochs == 9  # overrides win


def _parsed(argv):
    from fyi_apps.cli.common import GLOBAL_DEFAULTS

    args = build_parser(argv).parse_args(argv)
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    return args


def test_fyi_distill_builds_the_config_from_its_flags():
    from fyi_apps.distill import DistillConfig

    args = _parsed(["distill", "--dataset", "digits", "--method", "DC", "--ipc", "2", "--fyi", "--iterations", "5",
                    "--lr-img", "0.1", "--no-dsa", "--dsa-mode", "fyi", "--option", "outer_loop=2", "--seed", "3",
                    "--precision", "auto", "--channels-last"])
    cfg = from_namespace(DistillConfig, args, options={"outer_loop": 2})
    assert cfg == DistillConfig("dc", "digits", 2, fyi="flip", iterations=5, lr_img=0.1, dsa=False, dsa_mode="fyi",
                                seed=3, precision="auto", channels_last=True, options={"outer_loop": 2})
    plain = from_namespace(DistillConfig, _parsed(["distill", "--dataset", "digits", "--method", "dm", "--ipc", "1"]))
    assert plain == DistillConfig("dm", "digits", 1)  # every flag's default is the field's


def test_fyi_nas_and_eval_build_their_configs_from_their_flags():
    from fyi_apps.evaluate import EvalConfig
    from fyi_apps.tasks.nas import NasConfig

    assert from_namespace(NasConfig, _parsed(["nas", "--dataset", "digits"])) == NasConfig(dataset="digits")
    cfg = from_namespace(NasConfig, _parsed(["nas", "--dataset", "digits", "--proxy", "params", "--proxy", "random:2",
                                             "--curve", "5,2", "--topk", "3,10%", "--include", "mlp:width=8,vgg11",
                                             "--no-dsa", "--workers", "2"]))
    assert (cfg.proxies, cfg.curve, cfg.topk, cfg.include) == (["params", "random:2"], [2, 5], [3, "10%"],
                                                               ["mlp:width=8", "vgg11"])
    assert cfg.dsa is False and cfg.workers == 2
    ecfg = from_namespace(EvalConfig, _parsed(["eval", "random", "--epochs", "5", "--lr", "0.1", "--no-dsa"]))
    assert ecfg == EvalConfig(epochs=5, lr=0.1, dsa=False)


# --------------------------------------------------------------------------- declared once
def _hand_written_flags(module) -> set[str]:
    """The flags a module declares itself with ``add_argument("--x", ...)``."""
    out = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
            out |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("-")}
    return out


def _flags(argv) -> set[str]:
    parser = build_parser(argv)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[argv[0]]
    return {s for a in sub._actions for s in a.option_strings}


@pytest.mark.parametrize("command,owner,module,not_flags", [
    ("distill", "fyi_apps.distill:DistillConfig", "fyi_apps.distill.cli", ("seed",)),
    ("nas", "fyi_apps.tasks.nas:NasConfig", "fyi_apps.tasks.nas.cli", ("seed", "data_root", "candidates")),
    ("experts", "fyi_apps.distill.expert_config:ExpertConfig", "fyi_apps.cli.experts", ("seed",)),
    ("cl", "fyi_apps.tasks.continual.config:CLConfig", "fyi_apps.tasks.continual.cli",
     ("distill_cache", "momentum", "weight_decay", "holdout", "drop_last", "eval_batch_size")),
])
def test_every_field_is_a_flag_and_no_flag_is_declared_twice(command, owner, module, not_flags):
    """Each command's flags are its config's fields (but the listed ones); its module writes none of them by hand."""
    import importlib

    mod, _, name = owner.partition(":")
    cls = getattr(importlib.import_module(mod), name)
    flags = _flags([command])
    fields = [f for f in dataclasses.fields(cls) if f.name not in not_flags]
    assert [f.name for f in fields if flag_of(f) not in flags] == []
    assert _hand_written_flags(importlib.import_module(module)) & {flag_of(f) for f in dataclasses.fields(cls)} == set()


def test_eval_flags_are_evalconfig_fields_declared_once():
    from fyi_apps.cli import common
    from fyi_apps.evaluate import EvalConfig

    flags = {flag_of(f) for f in dataclasses.fields(EvalConfig)}
    assert _hand_written_flags(common) & flags == set()
    assert {flag_of(f) for f in dataclasses.fields(EvalConfig) if f.name in common.EVAL_FIELDS} <= _flags(["eval"])


def test_shared_options_and_choices_come_from_their_owner():
    from fyi_apps.distill import DistillConfig
    from fyi_apps.evaluate import EvalConfig
    from fyi_apps.runtime import PRECISIONS
    from fyi_apps.tasks.nas import NasConfig

    def opt(cls, name):
        return options.opt_of(next(f for f in dataclasses.fields(cls) if f.name == name))

    from fyi_apps.distill.expert_config import ExpertConfig
    from fyi_apps.tasks.continual.config import NO_FLAG, CLConfig

    for cls in (DistillConfig, EvalConfig, NasConfig, ExpertConfig, CLConfig):
        assert opt(cls, "dsa_mode").choices is MODES
    assert NO_FLAG == ("distill_cache", "momentum", "weight_decay", "holdout", "drop_last", "eval_batch_size")
    assert opt(DistillConfig, "precision").choices is PRECISIONS
    for name in ("lr", "batch_size", "dsa", "dsa_mode", "bf16", "channels_last"):
        assert opt(NasConfig, name) is opt(EvalConfig, name)  # nas trains with the evaluation protocol's options


def test_no_dsa_mode_list_is_typed_out():
    from pathlib import Path

    import fyi_apps

    root = Path(fyi_apps.__file__).parent
    typed = [str(p.relative_to(root)) for p in root.rglob("*.py")
             if re.search(r"""["']single["'],\s*["']fyi["'],\s*["']all["']""", p.read_text()) and p.name != "augment.py"]
    assert typed == []


# --------------------------------------------------------------------------- frozen, resolved once, typed options
def test_configs_are_frozen_and_method_options_stay_typed(digits):
    from fyi_apps.distill import DistillConfig, Distiller, MethodOptions, resolve_config

    cfg = DistillConfig("dc", "digits", 1, iterations=1, options={"outer_loop": 2})
    with pytest.raises(FyiError, match="frozen"):
        cfg.ipc = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ipc = 2
    resolved = resolve_config(cfg)
    assert isinstance(resolved.options, MethodOptions) and resolved.options.outer_loop == 2
    assert resolved.options["outer_loop"] == 2 and dict(resolved.options)["inner_loop"] == 1
    assert resolve_config(resolved) is resolved
    d = Distiller(resolved, digits, device="cpu")
    assert d.cfg is resolved and d.method.opts is resolved.options  # built once, not rebuilt from a dict
    assert dataclasses.asdict(resolved)["options"]["outer_loop"] == 2  # stored as a plain dict in files


def test_a_preset_fills_what_the_command_line_left_out():
    from fyi_apps.tasks.continual.config import CLConfig

    args = _parsed(["cl", "--protocol", "dm-paper", "--epochs", "7"])
    cfg = from_namespace(CLConfig, args, defaults={"epochs": 1000, "ipc": 20, "momentum": 0.5})
    assert (cfg.epochs, cfg.ipc, cfg.momentum, cfg.lr) == (7, 20, 0.5, 0.01)  # given > preset > the field's default
