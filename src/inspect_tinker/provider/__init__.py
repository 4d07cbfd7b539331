"""The `tinker` model provider and the backends it samples from (and the loop trains with).

`model_api.py` is the Inspect ModelAPI (`--model tinker/...`); `backend.py` the interface both
backends implement, shaped like the Tinker SDK; `local_backend.py` (PyTorch + PEFT in this
process) and `tinker_backend.py` (the Tinker service) the two backends. Importing this package
imports neither torch nor the Tinker SDK: the backends import them when built.
"""

from inspect_tinker.extras import require_extra
from inspect_tinker.models import resolve_base_model
from inspect_tinker.provider.backend import AdamWSettings, Backend, BackendInfo, StepMetrics

__all__ = ["AdamWSettings", "Backend", "BackendInfo", "StepMetrics", "check_backend_requirements", "create_backend"]


def check_backend_requirements(config) -> None:
    """Fail before any work (before a run folder exists) when the backend named by `config.backend`
    cannot start.

    `local` needs the `local` extra (torch, PEFT) and its base model on this machine: found,
    not loaded (the bundled model is unpacked once). `tinker` needs an API key. Neither needs the network.
    """
    if config.backend == "local":
        require_extra("local", ("torch", "peft"), "backend: local (training in this process)",
                      instead="or train on the Tinker service with backend: tinker")
        resolve_base_model(config.base_model)
    if config.backend == "tinker":
        from inspect_tinker.provider.tinker_backend import check_api_key  # the tinker SDK takes seconds to import

        check_api_key()


def create_backend(config) -> Backend:
    """Build the backend named by `config.backend`, with the base model loaded (local) or
    a LoRA training run created on the service (tinker)."""
    if config.backend == "tinker":
        from inspect_tinker.provider.tinker_backend import TinkerBackend

        return TinkerBackend.from_config(config)
    from inspect_tinker.provider.local_backend import LocalBackend  # torch, transformers' models, PEFT

    return LocalBackend.from_config(config)
