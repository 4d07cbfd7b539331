"""The optional parts of inspect-tinker: the check that the extra a feature needs is installed.

The core install (Inspect, tinker, pydantic, click and the light libraries of the data step
and tracking) evaluates, trains on Tinker and runs every command; an extra adds what only
some runs need (`local`: PyTorch, PEFT and GGUF for the in-process backend; `mlflow`;
`embeddings`). A feature that needs a missing one stops with one message naming the extra
(exit 2), before any work, not with an ImportError from deep inside.
"""

from __future__ import annotations

import importlib.util

from inspect_tinker.errors import UsageError


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str, instead: str = "") -> None:
    """Raise UsageError when one of `modules` (provided by the `extra` extra) is not installed.

    `needed_by` says what needs them ("backend: local"); `instead` is an alternative that
    needs no extra, appended to the message ("or use retrieval: bm25").
    """
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise UsageError(
            f"{needed_by} needs {', '.join(missing)}, which the {extra!r} extra installs: "
            f"pip install 'inspect-tinker[{extra}]'" + (f", {instead}" if instead else "") + "."
        )
