"""What a backend is built from: typed settings, one type per backend, fixed for a run.

The loop builds them once, where a run or an evaluation is set up (loop/settings.py), from the
run's configuration, and passes them down: the provider never reads the configuration. No
defaults here: the configuration states each one, once (the one the provider's `-M`
arguments share with it is stated below, and config.py takes it from here). A field has the name of the
configuration key it comes from, so a message naming a field names the key to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The values of the configuration keys of the same names (config.Config takes them from here).
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "bf16", "fp32"]
Distributed = Literal["ddp", "fsdp"]

# Seconds the Tinker service may go without answering while a result is awaited: the default
# of the key `tinker_unreachable_timeout` and of the provider's `-M unreachable_timeout`.
UNREACHABLE_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class AdamWSettings:
    """AdamW and gradient clipping settings, fixed for a run (Tinker's AdamParams, less the rate).

    From the keys `adam_beta1`, `adam_beta2`, `adam_eps`, `weight_decay` and `max_grad_norm`;
    `max_grad_norm` clips the global gradient norm before each step, 0 turns clipping off.
    """

    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    max_grad_norm: float


@dataclass(frozen=True)
class LocalBackendSettings:
    """The `local` backend's: the model and its LoRA adapter, how it trains and how it generates."""

    base_model: str
    device: Device
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    lora_target_modules: list[str] | Literal["all-linear"]
    # The largest rank policy `grow_rank` may widen the adapter to, None when the policy never
    # widens it: the memory check counts the rank the adapter may reach, not the one it starts at.
    max_lora_rank: int | None
    batch_size: int
    micro_batch_size: int | None
    max_seq_length: int
    packing: bool
    precision: Precision
    gradient_checkpointing: bool
    distributed: Distributed
    adamw: AdamWSettings
    seed: int
    renderer_name: str | None
    eval_batch_size: int
    sampling_precision: Precision  # the key generation.precision


@dataclass(frozen=True)
class TinkerBackendSettings:
    """The `tinker` backend's: the service, the model and the adapter it trains there."""

    base_model: str
    tinker_base_url: str | None
    tinker_tokenizer: str | None
    tinker_unreachable_timeout: float
    tinker_capacity_timeout: float
    lora_rank: int
    seed: int
    renderer_name: str | None
    adamw: AdamWSettings
    # `learning_rate: auto`: the backend reads the model's architecture and hidden size, which
    # the service does not report, before it creates the training run.
    learning_rate_auto: bool


BackendSettings = LocalBackendSettings | TinkerBackendSettings
