"""Training engines: one interface (the primitives Tinker exposes), several backends.

This file stays light (the configuration imports it to check a run's engine before any
work): each backend, with the heavy libraries it brings (torch and PEFT, or the tinker
SDK), is imported only by the functions that need that backend.
"""

from inspect_tinker.engines.base import AdamWSettings, Completion, EngineInfo, StepMetrics, TrainingEngine
from inspect_tinker.extras import require_extra
from inspect_tinker.models import resolve_base_model

__all__ = ["AdamWSettings", "Completion", "EngineInfo", "StepMetrics", "TrainingEngine", "check_engine_requirements", "create_engine"]


def check_engine_requirements(config) -> None:
    """Fail before any work (before a run folder exists) when the engine named by `config.engine`
    cannot start.

    `local` needs the `local` extra (torch, PEFT) and its base model on this machine: found,
    not loaded (the bundled model is unpacked once). `tinker` needs an API key. Neither needs the network.
    """
    if config.engine == "local":
        require_extra("local", ("torch", "peft"), "engine: local (training in this process)",
                      instead="or train on the Tinker service with engine: tinker")
        resolve_base_model(config.base_model)
    if config.engine == "tinker":
        from inspect_tinker.engines.tinker import check_api_key  # the tinker SDK takes seconds to import

        check_api_key()


def create_engine(config) -> TrainingEngine:
    """Build the engine named by `config.engine`, with the base model loaded (local) or
    a LoRA training run created on the service (tinker)."""
    if config.engine == "tinker":
        from inspect_tinker.engines.tinker import TinkerEngine

        return TinkerEngine.from_config(config)
    from inspect_tinker.engines.local import LocalEngine  # torch, transformers' models, PEFT

    return LocalEngine.from_config(config)
