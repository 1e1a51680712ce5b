"""The model registry: names -> builders, ``name:key=value`` specs, ``prefix:<name>`` hooks, checks.

* :func:`register_model` registers a model class (or a factory function)
  ``(channels, num_classes, image_size, **options) -> nn.Module`` under a
  case-insensitive name; :func:`list_models` lists them.
* :func:`register_prefix` hooks a family of names ``prefix:<name>`` (``timm:``,
  ``nb201:``) that is built by its own code.
* Both tables are :class:`~fyi_apps.registry.Registry` objects (:data:`MODELS`,
  :data:`MODEL_PREFIXES`): names are case-insensitive, ``_`` == ``-``, taken
  names are refused, unknown ones get "did you mean".
* :func:`create_model` builds any of them with seeded weights and records how
  (``model.fyi_config``); :func:`describe_model` summarizes a built model.
* :func:`check_model_names` refuses unknown or unbuildable names given by the
  user, with the registry's reason.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..errors import FyiError
from ..registry import Registry, check_pattern
from .layers import check_sizes


def _known_models() -> str:
    return (f"known: {', '.join(list_models())}, timm:<name> for any timm model, "
            "or nb201:<cell string> for a NAS-Bench-201 network")


#: model name -> ``factory(channels, num_classes, image_size, **options) -> nn.Module`` (a class or a function)
MODELS: Registry[Callable[..., nn.Module]] = Registry("model", choices=_known_models)
#: ``prefix`` of the names ``prefix:<anything>`` -> ``builder(name, channels, num_classes, image_size, **kw)``
MODEL_PREFIXES: Registry[Callable[..., "tuple[nn.Module, str]"]] = Registry("model prefix")


def register_model(name: str):
    """Decorator: register ``factory(channels, num_classes, image_size, **kw) -> nn.Module``.

    ``factory`` is a model class or a function; the model it returns must have
    ``embed(x) -> [N, D]``; names are case-insensitive, may not contain ``:``
    and may not be re-used.  Adding a network is one decorated class::

        @register_model("mynet")
        class MyNet(nn.Module):
            def __init__(self, channels, num_classes, image_size, width=64): ...

    Its keyword arguments (with their defaults) are the options users give as
    ``mynet:width=32`` or ``create_model("mynet", width=32, ...)``.
    """
    if not isinstance(name, str) or not name.strip() or ":" in name or "," in name:
        raise FyiError(f"bad model name {name!r}; use a non-empty name without ':' or ','")
    if name.strip().lower() == "timm":
        raise FyiError("'timm' is reserved for timm:<name>; pick another model name")

    def decorator(factory: Callable[..., nn.Module]):
        MODELS.add(name, factory)
        return factory

    return decorator


def list_models(pattern: str | None = None, *, timm_models: bool = False) -> list[str]:
    """Model names, optionally filtered by a shell-style ``pattern`` (``"vgg*"``, ``"nb201:*"``, ``"timm:resnet*"``).

    Args:
        pattern: wildcard pattern matched case-insensitively (``fnmatch``); None lists every registered name.
        timm_models: also list ``timm:<name>`` for every timm model (timm's own ``list_models``); a pattern that
            starts with ``timm:`` implies it.

    Returns:
        Sorted names ``create_model`` accepts.  NAS-Bench-201 cells are listed as ``nb201:<cell>`` when the pattern
        starts with ``nb201:`` (15,625 of them).

    Example:
        >>> list_models("resnet*")
        ['resnet18', 'resnet18bn']
    """
    import fnmatch

    names = sorted(MODELS.names())
    if pattern is None and not timm_models:
        return names
    pat = ("*" if pattern is None else check_pattern(pattern)).strip().lower() or "*"
    if pat.startswith("nb201:"):
        from .nb201 import PREFIX, all_cells

        names = [PREFIX + c for c in all_cells()]
    elif pat.startswith("timm:") or timm_models:
        import timm

        sub = pat[5:] if pat.startswith("timm:") else "*"
        extra = ["timm:" + n for n in timm.list_models(sub)]
        names = extra if pat.startswith("timm:") else names + extra
    return sorted(n for n in names if fnmatch.fnmatchcase(n.lower(), pat))


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'convnet:depth=2,act=sigmoid'`` -> ``('convnet', {'depth': 2, 'act': 'sigmoid'})``."""
    base, _, rest = spec.partition(":")
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise FyiError(f"bad model option {part!r} in {spec!r}; write name:key=value,key=value")
        opts[key.strip().lower()] = _parse_value(value)
    return base.strip(), opts


def _check_options(display: str, factory: Callable[..., nn.Module], options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n in params if n not in ("channels", "num_classes", "image_size")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        have = ", ".join(allowed) if allowed else "none"
        raise FyiError(f"model {display!r} has no option(s) {', '.join(bad)}; its options: {have}")


@torch.no_grad()
def dry_embed(model: nn.Module, channels: int, image_size: int) -> torch.Tensor:
    """``embed`` of a zero batch of 2 in eval mode (no RNG draws, BatchNorm-safe)."""
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        kw = {"device": p.device, "dtype": p.dtype} if p is not None and p.is_floating_point() else {}
        return model.embed(torch.zeros(2, channels, image_size, image_size, **kw))
    finally:
        model.train(was_training)


Builder = Callable[..., "tuple[nn.Module, str]"]


def register_prefix(prefix: str, builder: Builder | None = None, *, replace: bool = False):
    """Hook the names ``prefix:<anything>``: ``builder(name, channels, num_classes, image_size, **kw) -> (model, display)``.

    ``name`` is the whole name as given; options in it are the builder's to parse.
    ``register_prefix("p", builder)`` or, as a decorator, ``@register_prefix("p")``;
    a prefix is registered once (``replace=True`` swaps the builder).
    """
    if builder is None:
        return MODEL_PREFIXES.register(prefix, replace=replace)
    MODEL_PREFIXES.add(prefix, builder, replace=replace)
    return builder


@register_prefix("nb201")
def _nb201(name: str, channels: int, num_classes: int, image_size: int, **kwargs: Any) -> tuple[nn.Module, str]:
    from . import nb201  # NAS-Bench-201 cells: imported on first use

    return nb201.create(name, channels, num_classes, image_size, **kwargs), name.strip()


def _build(name: str, channels: int, num_classes: int, image_size: int, kwargs: dict[str, Any]) -> tuple[nn.Module, str, dict]:
    head, sep, _ = name.strip().partition(":")
    if sep and head in MODEL_PREFIXES:
        model, display = MODEL_PREFIXES.get(head)(name, channels, num_classes, image_size, **kwargs)
        return model, display, kwargs
    base, spec_opts = _parse_spec(name)
    if base not in MODELS:
        raise MODELS.unknown(base or name)
    display, factory = MODELS.display(base), MODELS.get(base)
    clash = sorted(k for k in spec_opts if k in kwargs and kwargs[k] != spec_opts[k])
    if clash:
        raise FyiError(f"option(s) {', '.join(clash)} given both in {name!r} and as arguments; give each once")
    options = {**spec_opts, **kwargs}
    _check_options(display, factory, options)
    model = factory(channels, num_classes, image_size, **options)
    if not isinstance(model, nn.Module) or not callable(getattr(model, "embed", None)):
        raise FyiError(f"model factory {display!r} must return an nn.Module with an embed(x) method")
    if not isinstance(getattr(model, "feature_dim", None), int):
        model.feature_dim = int(dry_embed(model, channels, image_size).shape[1])
    return model, display, options


def create_model(
    name: str,
    *,
    channels: int | None = None,
    num_classes: int,
    image_size: int,
    seed: int | None = 0,
    in_chans: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network, a ``name:key=value,...`` spec, or ``timm:<name>``.

    Args:
        name: a registered name (``list_models()``), with options (``convnet:depth=2,width=64``),
            ``nb201:<cell>`` or ``timm:<name>``.
        channels: input channels (``in_chans``, timm's spelling, is accepted too).
        num_classes: outputs of the classifier.
        image_size: input height = width in pixels.
        seed: draws the initial weights from a private copy of the CPU RNG seeded with it (the global RNG is
            untouched); None draws from the global RNG.
        **kwargs: the model's options; ``pretrained=True`` (timm models) loads weights already on disk (the
            Hugging Face cache, or ``pretrained_cfg_overlay={"file": PATH}``) and never downloads.

    Returns:
        The model on CPU in training mode, with ``embed(x)``, ``classifier`` and ``feature_dim``.

    Example:
        >>> net = create_model("convnet", in_chans=3, num_classes=10, image_size=32, seed=0)
    """
    if in_chans is not None:
        if channels is not None and int(channels) != int(in_chans):
            raise FyiError(f"channels={channels} and in_chans={in_chans} disagree; give one of them")
        channels = in_chans
    if channels is None:
        raise FyiError("create_model needs the input channels: channels=C (or in_chans=C)")
    if not isinstance(name, str) or not name.strip():
        raise FyiError(f"model name must be a non-empty string, got {name!r}")
    channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
    if seed is None:
        model, display, options = _build(name, channels, num_classes, image_size, kwargs)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise FyiError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(int(seed))
            model, display, options = _build(name, channels, num_classes, image_size, kwargs)
    model.fyi_config = {
        "name": display,
        "options": dict(options),
        "channels": channels,
        "num_classes": num_classes,
        "image_size": image_size,
        "seed": seed,
    }
    return model


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter counts, feature size and build settings, for reports."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out: dict[str, Any] = {
        "class": type(model).__name__,
        "params": int(params),
        "trainable_params": int(trainable),
        "feature_dim": getattr(model, "feature_dim", None),
    }
    config = getattr(model, "fyi_config", None)
    if isinstance(config, dict):
        out.update({k: v for k, v in config.items() if k not in out})
    extra = getattr(model, "fyi_describe", None)  # e.g. TimmNet: the timm name
    if callable(extra):
        out.update(extra())
    return out


def check_model_names(names: Iterable[str], flag: str, *, channels: int = 3, num_classes: int = 10,
                      image_size: int = 32, must_fit: bool = True, hint: str = "") -> list[str]:
    """Refuse unknown or unbuildable model names given by the user (``--include``, a ``--space`` list).

    The model registry's own reason is reported: an unknown name (with close
    matches), a bad option, or (with ``must_fit``) an image too small for it.  Without ``must_fit`` only the name and its
    options are checked (built at 224 px), so that space members too big for a
    small image may still be left out by the caller.  Nothing is allocated
    (the meta device).  ``hint`` is appended to the message (e.g. the named
    spaces, when a single unknown name may have been meant as one).
    """
    names = [str(n).strip() for n in names if str(n).strip()]
    size = image_size if must_fit else 224
    for n in names:
        try:
            with torch.device("meta"):
                create_model(n, channels=channels, num_classes=num_classes, image_size=size, seed=0)
        except FyiError as e:  # unknown name, bad option or (with must_fit) too small an image: the model says which
            try:  # a model may refuse the meta device only: confirm on the CPU
                create_model(n, channels=channels, num_classes=num_classes, image_size=size, seed=0)
            except FyiError:
                raise FyiError(f"{flag}: {n!r} cannot be used: {e}" + (f"; {hint}" if hint else "")) from None
    return names
