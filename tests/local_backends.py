"""Local backends built as a run builds them: settings from a Config, so every setting has the Config's default."""

from __future__ import annotations

from pathlib import Path

from inspect_tinker.config import Config
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider.local_backend import LocalBackend


def local_backend(model_dir: Path, **keys) -> LocalBackend:
    """A LocalBackend of the model in `model_dir`, with the Config's defaults and `keys` (config keys) changed."""
    return LocalBackend.from_settings(backend_settings(Config.model_construct(base_model=str(model_dir), **keys)))
