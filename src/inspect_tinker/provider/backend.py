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


def example_weights(batch: list[TokenizedExample]) -> list[float]:
    """The weight of every target token of each example of a step's batch in its cross-entropy,
    one number per example: 1 / (the example's target tokens x the batch's examples).

    The step's objective, the weighted sum of its tokens' losses, is then each example's mean
    loss per target token, averaged over the examples: a short answer counts as much as a long
    one. Both backends train on it (the service sums weighted token losses, so the tinker
    backend sends these weights), which is tinker-cookbook's supervised default (weights
    normalised to 1 per example) and what SkyRL's server computes whatever the weights' scale.
    Averaged rather than summed over the batch, the gradient, and so what `max_grad_norm`
    clips, does not grow with `batch_size`.
    """
    return [1.0 / (e.n_target_tokens * len(batch)) for e in batch]


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
class PolicyDatum:
    """One sampled completion to learn from in an RL step, as Tinker's RL datum carries it.

    `completion_tokens` are exactly the tokens the sampler returned (the stop token
    included), never the text re-tokenized: the importance ratio compares the current
    policy's log-probability of these tokens with `sampling_logprobs` (one per completion
    token, from the sampler). `advantage` is the completion's reward minus its group's mean.
    """

    prompt_tokens: list[int]
    completion_tokens: list[int]
    sampling_logprobs: list[float]
    advantage: float

    def __post_init__(self):
        # The first completion token is predicted from the prompt: an empty prompt leaves it
        # no position; and every completion token needs its own sampling logprob.
        if not self.prompt_tokens or not self.completion_tokens:
            raise ValueError("a PolicyDatum needs at least one prompt token and one completion token")
        if len(self.sampling_logprobs) != len(self.completion_tokens):
            raise ValueError(
                f"a PolicyDatum has {len(self.completion_tokens)} completion tokens but "
                f"{len(self.sampling_logprobs)} sampling logprobs; the sampler returns one per token"
            )


@dataclass(frozen=True)
class PolicyLoss:
    """The RL loss, named as Tinker's loss functions are: `importance_sampling` or `ppo`
    (the ratio clipped to [clip_low, clip_high])."""

    name: str = "importance_sampling"
    clip_low: float = 0.8
    clip_high: float = 1.2


@dataclass(frozen=True)
class PolicyStepMetrics:
    """Result of one forward_backward_policy: the summed per-token loss and its token count,
    and the fraction of tokens whose ratio the PPO clip cut (0 for importance_sampling).

    `kl_sample_train` is the mean over those tokens of the sampling logprob minus the current
    one: how far the trained policy has moved from the one that sampled (tinker-cookbook's
    `optim/kl_sample_train_v1`; about 0 when sampling used the current weights).
    """

    loss_sum: float
    n_tokens: int
    clip_fraction: float = 0.0
    kl_sample_train: float = 0.0

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


class Backend(Protocol):
    tokenizer: object  # renders with `renderer` installed (data/renderers.py)
    renderer: Renderer
    info: BackendInfo

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the mean per-target-token loss of `batch`."""

    def example_losses(self, examples: list[TokenizedExample]) -> list[float]:
        """Each example's mean loss per target token under the current weights, in order, with no
        gradient accumulated (policies/focus.py: which records the next round trains harder)."""

    def forward_backward_policy(self, data: list[PolicyDatum], loss: PolicyLoss) -> PolicyStepMetrics:
        """Accumulate gradients of the RL loss `loss` over the completion tokens of `data`, as
        Tinker's forward_backward with loss_fn="importance_sampling" or "ppo" does. The per-token
        loss is provider/policy_loss.py's; as for forward_backward, the local backend takes the
        mean over all completion tokens of the step and the service its sum (a constant scale
        within a step, which Adam's update does not depend on)."""

    def optim_step(self, learning_rate: float) -> None:
        """Apply accumulated gradients with AdamW at `learning_rate`, then clear them."""

    def sampler(self, *, with_adapter: bool = True, rollout: bool = False) -> Sampler:
        """A sampling client on the current weights (`with_adapter=False`: the base model alone,
        for a judge that must not be the model under test); `rollout`: for an RL rollout, which
        may sample in a faster precision than an evaluation (`generation.precision`)."""

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
