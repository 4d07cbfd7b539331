"""Resolving a base model name to a folder of weights that transformers can load."""

from inspect_tinker.models.resolve import BUNDLED_MODEL_NAME, resolve_base_model

__all__ = ["BUNDLED_MODEL_NAME", "resolve_base_model"]
