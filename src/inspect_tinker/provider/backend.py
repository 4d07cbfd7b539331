"""The backend interface: what the loop trains with and the `tinker` provider samples from.

It is shaped like the Tinker SDK, so the loop and the provider never know whether the model
is in this process (`local`) or on the service (`tinker`): a training side (forward_backward,
optim_step, checkpoints) and a sampling side that takes token ids and returns sequences of
token ids with their log-probabilities and why they stopped, as Tinker's SamplingClient does.
Rendering messages, stop strings, decoding, tool calls and usage are the provider's, once for
both backends (provider/model_api.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from inspect_tinker.data.render import TokenizedExample
from inspect_tinker.data.renderers import Renderer


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


# Requests kept in flight to the Tinker service when a task sets no max_connections.
SERVICE_MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class SamplingParams:
    """Tinker's SamplingParams as plain data (hashable: equal settings are batched together).

    `stop_tokens` end a sequence where sampled (the renderer's end of turn); `stop_strings`
    end it where the text contains them (the request's stop_seqs, `role_colon`'s end of
    turn). `top_k` -1 and `top_p` 1.0 mean no truncation; `seed` None: unseeded.
    `top_logprobs` > 0 asks for that many alternatives per sampled token.
    """

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    seed: int | None = None
    stop_tokens: tuple[int, ...] = ()
    stop_strings: tuple[str, ...] = ()
    logprobs: bool = False
    top_logprobs: int = 0


@dataclass(frozen=True)
class SampledSequence:
    """One sampled continuation, as Tinker returns it.

    `tokens` are the new tokens, the stop token included when one ended the sequence;
    `stop_reason` is "stop" (a stop token or string) or "length" (max_tokens). `logprobs`
    (one per token) and `top_logprobs` (per token: (token id, logprob) pairs, best first)
    are None where not asked for or not returned.
    """

    tokens: list[int]
    stop_reason: str
    logprobs: list[float] | None = None
    top_logprobs: list[list[tuple[int, float]]] | None = None


class Sampler(Protocol):
    """A sampling client: fixed weights (the current adapter, a checkpoint, or the base model)."""

    async def sample_async(self, prompt: list[int], num_samples: int, params: SamplingParams) -> list[SampledSequence]:
        """`num_samples` continuations of the token ids `prompt`."""

    def max_connections(self) -> int:
        """How many requests are worth keeping in flight at once."""


@dataclass(frozen=True)
class BackendInfo:
    """What the backend trains. Parameter counts are None where a service does not report them;
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


class Backend(Protocol):
    tokenizer: object  # renders with `renderer` installed (data/renderers.py)
    renderer: Renderer
    info: BackendInfo

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the mean per-target-token loss of `batch`."""

    def optim_step(self, learning_rate: float) -> None:
        """Apply accumulated gradients with AdamW at `learning_rate`, then clear them."""

    def sampler(self, *, with_adapter: bool = True) -> Sampler:
        """A sampling client on the current weights (`with_adapter=False`: the base model alone,
        for a judge that must not be the model under test)."""

    def save_checkpoint(self, directory: Path) -> str:
        """Write adapter + optimizer + RNG state into the empty folder `directory` (the run
        folder seals and renames it); return the checkpoint's address: the adapter's path
        inside `directory`, or a service URI."""

    def end_sampling(self) -> None:
        """Called by each evaluation when it has sampled all it needs (a sharded local backend
        keeps taking part in the other processes' generation until they are done too)."""

    def load_checkpoint(self, directory: Path) -> None:
        """Restore what save_checkpoint wrote."""

    def load_adapter(self, adapter_dir: Path) -> None:
        """Load the weights of a saved PEFT adapter (same rank and modules) for evaluation."""

    def grow_lora_rank(self, rank: int) -> None:
        """Widen the adapter to LoRA rank `rank` without changing the model's outputs (policy
        `grow_rank`; the local backend only); deterministic, so a resumed run grows the same adapter."""
