"""The `tinker` model provider and the backends it samples from (and the loop trains with).

`model_api.py` is the Inspect ModelAPI (`--model tinker/...`); `backend.py` the interface both
backends implement, shaped like the Tinker SDK; `settings.py` what each backend is built from;
`local_backend.py` (PyTorch + PEFT in this process) and `tinker_backend.py` (the Tinker service)
the two backends; `base_model.py` turns a model name into weights on this machine (the bundled
model unpacked once); `tinker_server/` is a local Tinker-compatible server to run the tinker
backend against without an account. Importing this package imports neither torch nor the
Tinker SDK: the backends import them when built.
"""

from inspect_tinker.errors import require_extra
from inspect_tinker.provider.base_model import resolve_base_model
from inspect_tinker.provider.backend import Backend, BackendInfo, StepMetrics
from inspect_tinker.provider.settings import AdamWSettings, BackendSettings, LocalBackendSettings, TinkerBackendSettings

__all__ = ["AdamWSettings", "Backend", "BackendInfo", "BackendSettings", "LocalBackendSettings", "StepMetrics",
           "TinkerBackendSettings", "check_backend_requirements", "create_backend"]


def check_backend_requirements(settings: BackendSettings) -> None:
    """Fail before any work (before a run folder exists) when the backend `settings` are for cannot start.

    `local` needs the `local` extra (torch, PEFT) and its base model on this machine: found,
    not loaded (the bundled model is unpacked once). `tinker` needs an API key. Neither needs the network.
    """
    if isinstance(settings, LocalBackendSettings):
        require_extra("local", ("torch", "peft"), "backend: local (training in this process)",
                      instead="or train on the Tinker service with backend: tinker")
        resolve_base_model(settings.base_model)
    else:
        from inspect_tinker.provider.tinker_backend import check_api_key  # the tinker SDK takes seconds to import

        check_api_key()


def create_backend(settings: BackendSettings) -> Backend:
    """Build the backend `settings` are for (LocalBackendSettings or TinkerBackendSettings), with the
    base model loaded (local) or a LoRA training run created on the service (tinker)."""
    if isinstance(settings, TinkerBackendSettings):
        from inspect_tinker.provider.tinker_backend import TinkerBackend

        return TinkerBackend.from_settings(settings)
    from inspect_tinker.provider.local_backend import LocalBackend  # torch, transformers' models, PEFT

    return LocalBackend.from_settings(settings)
