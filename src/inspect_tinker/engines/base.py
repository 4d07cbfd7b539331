"""The engine interface the loop drives. It mirrors the Tinker training API so the loop
never knows whether it trains in this process or on a managed service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from inspect_tinker.data.render import TokenizedExample


@dataclass(frozen=True)
class StepMetrics:
    """Result of one forward_backward: summed loss over target tokens and their count.

    `n_input_tokens` counts the real (non-pad) tokens the model read and `n_pad_tokens`
    the padding it computed on besides; both over all processes of a data-parallel run.
    """

    loss_sum: float
    n_tokens: int
    n_input_tokens: int = 0
    n_pad_tokens: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.n_tokens, 1)


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int
    stop_reason: str  # "stop" (EOS or a stop string) or "max_tokens"


@dataclass(frozen=True)
class EngineInfo:
    """What the engine trains. Parameter counts are None where a service does not report them;
    `model_type` (the Hugging Face architecture name) and `hidden_size` are what
    `learning_rate: auto` needs, None where unknown."""

    base_model: str
    device: str
    total_parameters: int | None
    trainable_parameters: int | None
    dtype: str  # training precision, e.g. "fp32" or "bf16 autocast"
    model_type: str | None = None  # transformers' model_type ("llama", "qwen2", ...): picks `learning_rate: auto`
    hidden_size: int | None = None
    processes: int = 1  # data-parallel processes training together
    sharded: bool = False  # FSDP: each process holds a shard of the weights, not a copy
    precision_reason: str | None = None  # why `precision: auto` chose `dtype`, where it was measured


@dataclass(frozen=True)
class AdamWSettings:
    """AdamW and gradient clipping settings, fixed for a run (Tinker's AdamParams, less the rate).

    `max_grad_norm` clips the global gradient norm before each step; 0 turns clipping off.
    No defaults here: the run's Config states them, once.
    """

    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    max_grad_norm: float

    @classmethod
    def from_config(cls, config) -> "AdamWSettings":
        """The settings of a run's Config (keys `adam_beta1`, `adam_beta2`, `adam_eps`, `weight_decay`, `max_grad_norm`)."""
        return cls(beta1=config.adam_beta1, beta2=config.adam_beta2, eps=config.adam_eps,
                   weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm)


class TrainingEngine(Protocol):
    tokenizer: object
    info: EngineInfo

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the mean per-target-token loss of `batch`."""

    def optim_step(self, learning_rate: float) -> None:
        """Apply accumulated gradients with AdamW at `learning_rate`, then clear them."""

    def sample(
        self, prompts: list[list[int]], max_tokens: int, temperature: float, stop: list[str],
        *, with_adapter: bool = True,
    ) -> list[Completion]:
        """Generate one completion per prompt (token ids) with the current weights.

        `with_adapter=False` answers with the base model alone (a judge that must not be
        the model under test).
        """

    def save_checkpoint(self, directory: Path) -> str:
        """Write adapter + optimizer + RNG state into the empty folder `directory` (the run
        folder seals and renames it); return the checkpoint's address: the adapter's path
        inside `directory`, or a service URI."""

    def end_sampling(self) -> None:
        """Called by each evaluation when it has sampled all it needs (a sharded local engine
        keeps taking part in the other processes' generation until they are done too)."""

    def load_checkpoint(self, directory: Path) -> None:
        """Restore what save_checkpoint wrote."""

    def load_adapter(self, adapter_dir: Path) -> None:
        """Load the weights of a saved PEFT adapter (same rank and modules) for evaluation."""

    def grow_lora_rank(self, rank: int) -> None:
        """Widen the adapter to LoRA rank `rank` without changing the model's outputs (policy
        `grow_rank`; the local engine only); deterministic, so a resumed run grows the same adapter."""
