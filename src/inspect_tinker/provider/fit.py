"""Will a local run fit? The LoRA rank against the model's layers, and the memory a run needs
against the memory the device has, checked before any weight is loaded.

The model is built on PyTorch's meta device (shapes without storage, a fraction of a second
even for 70B parameters) and wrapped by PEFT itself, so the adapted layers are exactly the
ones training will adapt. Nothing here allocates more than a few MB: a rank of 100 000
on the bundled model would otherwise allocate until the kernel's OOM killer stops it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import AutoConfig, AutoModelForCausalLM

from inspect_tinker.errors import UsageError

GB = 1e9
FP32 = 4
# Per trainable LoRA parameter: its fp32 weight, its gradient, and AdamW's two moments.
ADAPTER_BYTES_PER_PARAMETER = 4 * FP32
# Per token of the vocabulary projection: the logits as fp32 (cross-entropy upcasts them) and their gradient.
LOGIT_BYTES = 2 * FP32


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs to know about a model and its adapter, as plain numbers."""

    base_parameters: int
    adapted: list[tuple[int, int]]  # (in_features, out_features) of every layer that gets an adapter
    hidden_size: int
    blocks: int
    vocab_size: int

    @property
    def max_useful_rank(self) -> int:
        """Above min(in, out) a layer's LoRA update B·A gains no rank; above the largest such
        value no adapted layer gains anything from a higher rank."""
        return max(min(shape) for shape in self.adapted)


def model_shape(model_dir: Path, target_modules: list[str] | str) -> ModelShape:
    """The shape of the model in `model_dir` (its config.json alone) with LoRA on `target_modules`.

    Raises UsageError when `target_modules` names no layer of the model.
    """
    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    base_parameters = sum(p.numel() for p in model.parameters())
    try:
        adapted = get_peft_model(model, LoraConfig(r=1, target_modules=target_modules, task_type="CAUSAL_LM"))
    except ValueError as err:  # PEFT: "Target modules {...} not found in the base model"
        raise UsageError(f"lora_target_modules: {err}") from None
    text = config.get_text_config()
    return ModelShape(
        base_parameters=base_parameters,
        adapted=[(m.in_features, m.out_features) for m in adapted.modules() if isinstance(m, LoraLayer)],
        hidden_size=text.hidden_size,
        blocks=text.num_hidden_layers,
        vocab_size=text.vocab_size,
    )


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run holds at once: what its parts need (see `estimate_memory`)."""

    base_weights: float
    adapter: float
    activations: float

    @property
    def total(self) -> float:
        return self.base_weights + self.adapter + self.activations


def estimate_memory(
    shape: ModelShape, lora_rank: int, tokens: int, activation_bytes: int, gradient_checkpointing: bool, shards: int = 1,
) -> MemoryEstimate:
    """The memory one training process needs with a rank-`lora_rank` adapter and micro-batches
    of `tokens`, its weights and adapter split over `shards` processes (FSDP; 1 otherwise).

    - base weights: every parameter in fp32 (the local backend loads them so);
    - adapter: r · (in + out) parameters per adapted layer, each with its gradient and AdamW's
      two moments, all fp32;
    - activations of one micro-batch, kept for the backward pass: every adapted layer's input
      and its rank-r intermediate per token (in the training precision), and the logits with
      their gradient in fp32. With gradient checkpointing only one block's are kept at a time,
      plus each block's input.
    Attention scores and the MLP's inner products are left out, so a real run needs somewhat
    more: the estimate refuses what cannot fit, never what might.
    """
    per_token = sum(n_in + lora_rank for n_in, _ in shape.adapted) * activation_bytes
    if gradient_checkpointing:
        per_token = per_token / shape.blocks + shape.hidden_size * shape.blocks * activation_bytes
    return MemoryEstimate(
        base_weights=shape.base_parameters * FP32 / shards,
        adapter=lora_rank * sum(i + o for i, o in shape.adapted) * ADAPTER_BYTES_PER_PARAMETER / shards,
        activations=tokens * (per_token + shape.vocab_size * LOGIT_BYTES),
    )


def available_memory(device: torch.device) -> float:
    """Bytes free for this process: the GPU's free memory on CUDA, else the machine's available RAM."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    return float(psutil.virtual_memory().available)


def check_rank(shape: ModelShape, lora_rank: int) -> None:
    """Refuse (UsageError) a `lora_rank` above what any adapted layer can use, naming the maximum."""
    if lora_rank > shape.max_useful_rank:
        raise UsageError(
            f"lora_rank {lora_rank} is larger than any adapted layer can use: the widest has min(in, out) = "
            f"{shape.max_useful_rank}, and a LoRA update never has a higher rank than that. "
            f"Set lora_rank to at most {shape.max_useful_rank} (ranks of 8 to 64 are usual)."
        )


def check_memory(
    shape: ModelShape, *, lora_rank: int, rank_key: str, tokens: int, activation_bytes: int,
    gradient_checkpointing: bool, shards: int, available: float, device: str,
) -> MemoryEstimate:
    """Refuse (UsageError) a run whose estimated memory (`estimate_memory`) exceeds `available`
    bytes; the message gives the parts and the largest rank that fits. `rank_key` is the config
    key the rank came from. Returns the estimate."""
    def needed(rank: int) -> MemoryEstimate:
        return estimate_memory(shape, rank, tokens, activation_bytes, gradient_checkpointing, shards)

    estimate = needed(lora_rank)
    if estimate.total <= available:
        return estimate
    needs = (f"{rank_key} {lora_rank} needs about {estimate.total / GB:.1f} GB (base weights "
             f"{estimate.base_weights / GB:.1f} GB, adapter with gradients and AdamW state {estimate.adapter / GB:.1f} GB, "
             f"activations of a micro-batch of {tokens} tokens {estimate.activations / GB:.1f} GB), "
             f"but {available / GB:.1f} GB is free on {device}")
    # The estimate grows linearly with the rank: total(r) = total(0) + r * per_rank.
    rankless, per_rank = needed(0).total, needed(1).total - needed(0).total
    fits = math.floor((available - rankless) / per_rank) if available > rankless else 0
    if fits >= 1:
        raise UsageError(f"{needs}. Set {rank_key} to at most {fits}, or lower micro_batch_size or max_seq_length.")
    raise UsageError(
        f"{needs}; even rank 1 needs {needed(1).total / GB:.1f} GB. Lower micro_batch_size or max_seq_length, "
        "turn on gradient_checkpointing, or use a smaller base_model or a machine with more memory."
    )
