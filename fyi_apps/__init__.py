"""fyi-apps: dataset distillation with FYI (Flip Your Images) and its applications."""

__version__ = "0.1.0"

from .errors import FyiError  # noqa: E402

__all__ = ["FyiError", "__version__"]
