"""Warnings that point at the user's line, however deep in the library they are raised.

A fixed ``stacklevel`` is right for one call path only: the store warns from ``_write``, which
``add_knowledge``, ``update_knowledge``, ``add_texts`` → ``add_knowledge``, ``import_jsonl`` and
the agent tools (``tool.invoke`` → langchain-core → ``_run`` → ``add_knowledge``) reach at
different depths. :func:`warn_at_caller` walks the stack instead and reports the first frame
outside the library (``warnings.warn(..., skip_file_prefixes=...)`` does that from Python 3.12;
the package supports 3.10).
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn_at_caller"]

_LIBRARY_PACKAGES = ("langchain_recipe", "langchain_core")
"""Frames of these packages are skipped: langchain-core runs tools, retrievers and chat models."""
_WRAPPERS = ("torch.utils._contextlib", "contextlib", "functools")
"""Decorator wrappers around library functions (``@torch.no_grad()``): skipped as well."""
_ENTRY_POINTS = (
    "langchain_recipe.cli",
    "langchain_recipe.evaluation",
    "langchain_recipe.benchmarks",
    "langchain_recipe.training",
)
"""Modules of this package that use the library like a user does: a warning points at them."""


def _is_library(module: str) -> bool:
    if any(module == name or module.startswith(f"{name}.") for name in _ENTRY_POINTS):
        return False
    return module in _WRAPPERS or any(module == name or module.startswith(f"{name}.") for name in _LIBRARY_PACKAGES)


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn(message, category)`` attributed to the innermost frame outside the library.

    Args:
        message: the warning's text.
        category: its class, e.g. ``EditConflictWarning``.
    """
    frame = sys._getframe(1)  # the library function that warns
    stacklevel = 2  # warnings.warn counts this function as level 1
    while frame is not None and _is_library(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
