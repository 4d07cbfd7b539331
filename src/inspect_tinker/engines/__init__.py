"""Training engines: one interface (the primitives Tinker exposes), several backends."""

import importlib.util

from inspect_tinker.engines.base import AdamWSettings, Completion, EngineInfo, StepMetrics, TrainingEngine
from inspect_tinker.errors import UsageError

__all__ = ["AdamWSettings", "Completion", "EngineInfo", "StepMetrics", "TrainingEngine", "check_engine_requirements", "create_engine"]


def check_engine_requirements(config) -> None:
    """Fail before any work (before a run folder exists) when the engine named by `config.engine`
    cannot start.

    `local` needs its base model on this machine: found, not loaded (the bundled model is
    unpacked once). `tinker` needs its SDK (the `tinker` extra) and an API key. Neither needs the network.
    """
    if config.engine == "local":
        from inspect_tinker.models import resolve_base_model

        resolve_base_model(config.base_model)
    if config.engine == "tinker":
        if importlib.util.find_spec("tinker") is None:
            raise UsageError("engine: tinker needs the Tinker SDK; install it with: pip install 'inspect-tinker[tinker]'")
        from inspect_tinker.engines.tinker import check_api_key

        check_api_key()


def create_engine(config) -> TrainingEngine:
    """Build the engine named by `config.engine`, with the base model loaded (local) or
    a LoRA training run created on the service (tinker)."""
    if config.engine == "tinker":
        from inspect_tinker.engines.tinker import TinkerEngine

        return TinkerEngine.from_config(config)
    from inspect_tinker.engines.local import LocalEngine

    return LocalEngine.from_config(config)
