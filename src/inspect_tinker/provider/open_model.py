"""What `--model tinker/<name> -M ...` opens: a sampler with its tokenizer and renderer.

`choose_backend` checks the arguments without loading anything or asking the network
(Inspect builds the provider before the evaluation starts; mistakes are reported then);
`open_model` does the slow part on first use: loading weights (local) or creating the
service's sampling client (tinker).

`-M backend=auto` (the default) decides from the model string alone, so a log's model name
and model_args always say which backend answered: a `tinker://` path, or a hub id (`org/name`)
that is not a folder here, means the Tinker service; the bundled model's name, a local folder,
or a `model_path` that is a local folder means this machine.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, replace
from pathlib import Path

from inspect_tinker.data.renderers import RENDERERS, Renderer, use_renderer
from inspect_tinker.errors import UsageError
from inspect_tinker.models.resolve import BUNDLED_ALIASES
from inspect_tinker.provider.backend import Sampler

LOCAL_EXTRA = ("torch", "transformers", "peft")


@dataclass(frozen=True)
class ProviderArgs:
    """The provider's `-M` arguments, checked (what the log's model_args records)."""

    backend: str
    base_model: str | None
    model_path: str | None
    renderer: str | None
    tokenizer: str | None
    device: str
    batch_size: int


@dataclass(frozen=True)
class OpenedModel:
    sampler: Sampler
    tokenizer: object  # renders with `renderer` installed
    renderer: Renderer


def _is_tinker_path(name: str | None) -> bool:
    return bool(name) and name.startswith("tinker://")


def choose_backend(model_name: str, args: "ProviderArgs") -> "ProviderArgs":
    """`args` with `auto` resolved and checked as far as can be without loading or the network.

    Raises UsageError: an unknown renderer, a missing `[local]` extra or Tinker SDK, a local
    path that is neither a model nor an adapter folder, a training-state (`weights/`) path,
    a missing or malformed TINKER_API_KEY.
    """
    checkpoint = args.model_path or (model_name if _is_tinker_path(model_name) else None)
    backend = args.backend
    if backend == "auto":
        here = model_name.lower() in BUNDLED_ALIASES or Path(model_name).expanduser().is_dir()
        here = here or (args.model_path is not None and not _is_tinker_path(args.model_path))
        backend = "local" if here and not _is_tinker_path(checkpoint) else "tinker"
    if args.renderer is not None and args.renderer not in RENDERERS:
        raise UsageError(f"-M renderer={args.renderer} is unknown; the renderers are: {', '.join(RENDERERS)}.")
    if backend == "local":
        missing = [m for m in LOCAL_EXTRA if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(
                f"backend local needs {', '.join(missing)}: install the local extra: pip install 'inspect-tinker[local]'"
            )
        if _is_tinker_path(checkpoint):
            raise UsageError(f"{checkpoint} is on the Tinker service; evaluate it with -M backend=tinker.")
        if args.model_path is not None:
            _local_kind(Path(args.model_path))
    else:
        if importlib.util.find_spec("tinker") is None:
            raise UsageError("backend tinker needs the Tinker SDK: pip install 'inspect-tinker[tinker]'")
        from inspect_tinker.provider.tinker_backend import check_api_key, check_sampler_path

        check_api_key()
        if checkpoint is not None:
            check_sampler_path(checkpoint)
    return replace(args, backend=backend)


def _local_kind(path: Path) -> str:
    """`adapter` (a PEFT adapter folder) or `model` (a Hugging Face model folder)."""
    if (path / "adapter_config.json").is_file():
        return "adapter"
    if (path / "config.json").is_file():
        return "model"
    raise UsageError(
        f"-M model_path={path} is neither a PEFT adapter folder (adapter_config.json) nor a model folder "
        f"(config.json){'' if path.exists() else ': it does not exist'}; give a run's round adapter, "
        "e.g. runs/<run>/rounds/<n>/adapter."
    )


def open_model(model_name: str, args: "ProviderArgs", base_url: str | None, api_key: str | None) -> OpenedModel:
    """Load or connect to what `args` (as `choose_backend` returned them) name."""
    if args.backend == "local":
        return _open_local(model_name, args)
    return _open_tinker(model_name, args, base_url, api_key)


def _open_local(model_name: str, args: "ProviderArgs") -> OpenedModel:
    """The model in this process; an adapter is merged into the base weights (nothing trains
    here, so generation runs at the base model's speed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inspect_tinker.models import resolve_base_model
    from inspect_tinker.provider.local_backend import attention_for, pick_device
    from inspect_tinker.provider.local_sampling import LocalSampler, generate_batch

    device = pick_device(args.device)
    path = Path(args.model_path) if args.model_path else None
    kind = _local_kind(path) if path is not None else None
    base_name = args.base_model or model_name
    model_dir = path if kind == "model" else resolve_base_model(base_name)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    renderer = use_renderer(tokenizer, args.renderer, base_name)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attention_for(device))
    if kind == "adapter":
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, path).merge_and_unload()
        except (ValueError, RuntimeError, KeyError) as err:
            raise UsageError(f"the adapter {path} does not fit {base_name} ({err.__class__.__name__}: {err}); "
                             "give the base model it was trained from: -M base_model=...") from None
    model = model.to(device).eval()

    def generate(prompts, num_samples, params):
        return generate_batch(model, tokenizer, device, prompts, num_samples, params)

    return OpenedModel(LocalSampler(generate, args.batch_size), tokenizer, renderer)


def _open_tinker(model_name: str, args: "ProviderArgs", base_url: str | None, api_key: str | None) -> OpenedModel:
    """A sampling client on the service: of the checkpoint (its base model from the service
    unless `base_model` names it), or of the base model."""
    import tinker

    from inspect_tinker.provider.tinker_backend import TinkerSampler, load_tokenizer, service_call

    checkpoint = args.model_path or (model_name if _is_tinker_path(model_name) else None)
    base_url = base_url or os.environ.get("TINKER_BASE_URL")
    service = tinker.ServiceClient(base_url=base_url)
    base_model = args.base_model or (None if checkpoint else model_name)
    if base_model is None:
        with service_call(f"looking up the base model of {checkpoint}",
                          refused=f"the checkpoint {checkpoint} was not found on the Tinker service"):
            base_model = tinker.RestClient(base_url=base_url).get_training_run_by_tinker_path(checkpoint).result().base_model
    with service_call(
        f"creating a sampling client of {checkpoint or base_model}",
        refused=f"the Tinker service refused {checkpoint or repr(base_model)}"
        + ("" if checkpoint else "; use a base model it offers"),
    ):
        if checkpoint:
            client = service.create_sampling_client(model_path=checkpoint).result()
        else:
            client = service.create_sampling_client(base_model=base_model).result()
    tokenizer = load_tokenizer(args.tokenizer, client, base_model, hint="-M tokenizer=")
    renderer = use_renderer(tokenizer, args.renderer, base_model)
    return OpenedModel(TinkerSampler(client), tokenizer, renderer)

