"""What `--model tinker/<name> -M ...` opens: a sampler with its tokenizer and renderer.

`choose_backend` checks the arguments without loading anything or asking the network;
`open_model` then does the slow part: loading weights (local) or asking the service for the
model and creating its sampling client (tinker). The provider does both when Inspect builds it,
before the evaluation starts, so what only loading or the service can tell (a model that is not
there, a renderer the tokenizer cannot use, a device this machine lacks) is reported then too.

`-M backend=auto` (the default) decides from the model string alone, so a log's model name
and model_args always say which backend answered: a `tinker://` path, or a hub id (`org/name`)
that is not a folder here, means the Tinker service; the bundled model's name, a local folder,
or a `model_path` that is a local folder means this machine.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inspect_tinker.data.renderers import RENDERERS, Renderer, recommended_renderer, use_renderer
from inspect_tinker.errors import UsageError
from inspect_tinker.provider.base_model import BUNDLED_ALIASES
from inspect_tinker.provider.backend import Sampler
from inspect_tinker.provider.settings import UNREACHABLE_TIMEOUT_SECONDS, Device

LOCAL_EXTRA = ("torch", "transformers", "peft")


class ProviderArgs(BaseModel):
    """The provider's `-M` arguments, each with its type and bounds (what the log's model_args records)."""

    # Strict about names: a misspelt argument would otherwise be ignored without a word.
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["auto", "local", "tinker"] = "auto"
    base_model: str | None = None
    model_path: str | None = None
    renderer: str | None = None
    tokenizer: str | None = None  # tinker: a local tokenizer folder or hub id, instead of the service's
    device: Device = "auto"
    # local: prompts generated together in one batch, and the requests Inspect keeps in flight.
    batch_size: int = Field(16, ge=1)
    # tinker: seconds without an answer from the service before a wait fails.
    unreachable_timeout: float = Field(UNREACHABLE_TIMEOUT_SECONDS, gt=0)
    # jammastergirish/inspect-tinker's argument: with a Qwen3 model and no renderer given, False
    # renders with `qwen3_disable_thinking` (the empty think block Qwen's template writes), True with `qwen3`.
    enable_thinking: bool | None = None


def provider_args(model_args: dict[str, Any]) -> ProviderArgs:
    """`-M` arguments as ProviderArgs; UsageError naming the first argument that is wrong and why."""
    try:
        return ProviderArgs(**model_args)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        if first["type"] == "extra_forbidden":
            raise UsageError(
                f"unknown -M argument {key}; the tinker provider takes: {', '.join(ProviderArgs.model_fields)}."
            ) from None
        raise UsageError(f"-M {key}={model_args.get(key)}: {first['msg']}.") from None


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
        if importlib.util.find_spec("tinker") is None:  # a core dependency: only a damaged install lacks it
            raise UsageError("backend tinker needs the Tinker SDK, a dependency of inspect-tinker that is missing "
                             "here: pip install --force-reinstall inspect-tinker")
        from inspect_tinker.provider.tinker_backend import check_api_key, check_sampler_path

        check_api_key()
        if checkpoint is not None:
            check_sampler_path(checkpoint)
    return args.model_copy(update={"backend": backend})


def _renderer_name(args: ProviderArgs, base_model: str) -> str | None:
    """The renderer asked for; `enable_thinking` picks between Qwen3's two when none is."""
    if args.renderer is None and args.enable_thinking is not None and recommended_renderer(base_model) == "qwen3":
        return "qwen3" if args.enable_thinking else "qwen3_disable_thinking"
    return args.renderer


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

    from inspect_tinker.provider.base_model import resolve_base_model
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
    renderer = use_renderer(tokenizer, _renderer_name(args, base_name), base_name)
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

    from tinker.lib.base_url import resolve_base_url

    from inspect_tinker.provider.tinker_backend import (
        ResultWaiter, TinkerSampler, check_model_offered, load_tokenizer, service_call,
    )

    checkpoint = args.model_path or (model_name if _is_tinker_path(model_name) else None)
    base_url = base_url or os.environ.get("TINKER_BASE_URL")
    service = tinker.ServiceClient(base_url=base_url)
    wait = ResultWaiter(resolve_base_url(base_url), args.unreachable_timeout)
    base_model = args.base_model or (None if checkpoint else model_name)
    if base_model is None:
        with service_call(f"looking up the base model of {checkpoint}",
                          refused=f"the checkpoint {checkpoint} was not found on the Tinker service"):
            base_model = wait(tinker.RestClient(base_url=base_url).get_training_run_by_tinker_path(checkpoint)).base_model
    if not checkpoint:  # the service may accept any name and fail each sample: asked first
        check_model_offered(base_model, base_url, wait)
    with service_call(
        f"creating a sampling client of {checkpoint or base_model}",
        refused=f"the Tinker service refused {checkpoint or repr(base_model)}"
        + ("" if checkpoint else "; use a base model it offers"),
    ):
        if checkpoint:
            client = wait(service.create_sampling_client(model_path=checkpoint))
        else:
            client = wait(service.create_sampling_client(base_model=base_model))
    tokenizer = load_tokenizer(args.tokenizer, client, base_model, hint="-M tokenizer=")
    renderer = use_renderer(tokenizer, _renderer_name(args, base_model), base_model)
    return OpenedModel(TinkerSampler(client, wait), tokenizer, renderer)

