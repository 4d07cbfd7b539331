"""Training engines: one interface (the primitives Tinker exposes), several backends."""

from evaltune.engines.base import AdamWSettings, Completion, EngineInfo, StepMetrics, TrainingEngine

__all__ = ["AdamWSettings", "Completion", "EngineInfo", "StepMetrics", "TrainingEngine", "create_engine"]


def create_engine(config) -> TrainingEngine:
    """Build the engine named by `config.engine`, with the base model loaded."""
    from evaltune.engines.local import LocalEngine

    return LocalEngine.from_config(config)
