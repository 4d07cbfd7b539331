"""The `local` backend: PyTorch + PEFT LoRA in this process, on CPU or GPU.

The base weights are loaded once; every round keeps training the same adapter. Started by
`torchrun` or `accelerate launch`, several such processes train one adapter together
(data parallel, each with a full copy of the model or a shard of it; see provider/distributed.py).
"""

from __future__ import annotations

import json
import random
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForCausalLM, AutoTokenizer

from inspect_tinker.data.batching import micro_batches
from inspect_tinker.data.render import TokenizedExample
from inspect_tinker.data.renderers import use_renderer
from inspect_tinker.data.tensors import IGNORE_INDEX, collate, pack
from inspect_tinker.provider.backend import AdamWSettings, BackendInfo, SampledSequence, SamplingParams, StepMetrics
from inspect_tinker.provider.distributed import DataParallel, Lockstep, shard
from inspect_tinker.provider.fit import available_memory, check_memory, check_rank, model_shape
from inspect_tinker.provider.local_sampling import LocalSampler, generate_batch
from inspect_tinker.provider.precision import choose_cpu_precision
from inspect_tinker.errors import UsageError
from inspect_tinker.models import resolve_base_model

TRAINER_STATE_FILE = "trainer_state.pt"
Precision = Literal["auto", "bf16", "fp32"]
Distributed = Literal["ddp", "fsdp"]
# Under FSDP the adapter and its optimizer state are gathered whole for a checkpoint (they
# are small); the frozen base weights are left out and never gathered.
FULL_ADAPTER = StateDictOptions(full_state_dict=True, ignore_frozen_params=True)


def attention_for(device: torch.device) -> str:
    """The attention implementation the backend trains with on `device` (the benchmark gives its peer the same)."""
    # On CPU, PyTorch's fused attention with a mask (padding or packing) trained 10 to 40 %
    # slower than plain matmul attention in bf16 on our benchmark (bench/README.md).
    return "eager" if device.type == "cpu" else "sdpa"


def pick_device(name: str) -> torch.device:
    """`auto`: CUDA when present, else CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _check_fits(model_dir: Path, config, processes: int) -> None:
    """Refuse, before loading anything, a LoRA rank the model cannot use or a run the device's memory cannot hold."""
    shape = model_shape(model_dir, config.lora_target_modules)
    check_rank(shape, config.lora_rank)
    rank, rank_key = config.lora_rank, "lora_rank"
    if config.policy == "grow_rank":  # memory for the largest rank the adapter may grow to (a useful one)
        grows_to = min(config.max_lora_rank, shape.max_useful_rank)
        if grows_to > rank:
            rank, rank_key = grows_to, "max_lora_rank"
    per_process = -(-config.batch_size // processes)  # each process trains its share of the batch
    device = pick_device(config.device)
    check_memory(
        shape, lora_rank=rank, rank_key=rank_key,
        tokens=min(config.micro_batch_size or per_process, per_process) * config.max_seq_length,
        # `auto` counts as bf16, the smaller of what it may pick: the estimate refuses only what cannot fit.
        activation_bytes=4 if config.precision == "fp32" else 2, gradient_checkpointing=config.gradient_checkpointing,
        shards=processes if config.distributed == "fsdp" else 1, available=available_memory(device), device=str(device),
    )


class LocalBackend:
    """LoRA training and generation on a model held in memory."""

    def __init__(
        self,
        model_dir: Path,
        *,
        base_model: str,
        lora_rank: int,
        lora_alpha: float,
        lora_dropout: float,
        lora_target_modules: list[str] | str,
        micro_batch_size: int | None,
        packing: bool,
        precision: Precision,
        gradient_checkpointing: bool,
        distributed: Distributed,
        adamw: AdamWSettings,
        device: str,
        seed: int,
        renderer_name: str | None,
        eval_batch_size: int,
    ):
        """Every setting is the config key of the same name (no defaults here: the Config states them once)."""
        self.data_parallel = DataParallel.from_env()
        self.device = pick_device(device)
        if self.data_parallel.enabled:
            self.device = self.data_parallel.start(self.device)
        self.micro_batch_size = micro_batch_size
        self.seed = seed
        self.packing = packing
        self.adamw = adamw
        self.precision, precision_reason = precision, None
        if precision == "auto" and self.device.type == "cuda":
            self.precision = "bf16"
        elif precision == "auto":  # on CPU, measured (provider/precision.py); every process trains as process 0 chose
            choice = choose_cpu_precision() if self.data_parallel.rank == 0 else None
            choice = self.data_parallel.gather(choice)[0] if self.data_parallel.enabled else choice
            self.precision, precision_reason = choice.precision, choice.reason
        torch.manual_seed(seed)  # the adapter's random init depends on it
        self.eval_batch_size = eval_batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.renderer = use_renderer(self.tokenizer, renderer_name, base_model)
        # FSDP shards in place, once; alone, a process has nothing to shard over.
        sharding = distributed == "fsdp" and self.data_parallel.enabled
        base = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation=attention_for(self.device)
        )
        if not sharding:  # sharded, fully_shard moves one block at a time to the device and keeps its shard there
            base = base.to(self.device)
        if gradient_checkpointing:
            # Non-reentrant checkpointing needs no grad-requiring inputs, which frozen embeddings lack.
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=lora_target_modules,
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(base, lora)
        self.sharded = shard(base) if sharding else None
        self._lockstep = Lockstep(self.data_parallel, self._generate_with) if self.sharded else None
        self._wrap_for_training()
        self.info = BackendInfo(
            base_model=base_model,
            device=str(self.device),
            total_parameters=sum(p.numel() for p in self.model.parameters()),
            trainable_parameters=self._trainable_parameters(),
            dtype="bf16 autocast" if self.precision == "bf16" else "fp32",
            model_type=getattr(base.config, "model_type", None),
            hidden_size=getattr(base.config, "hidden_size", None),
            processes=self.data_parallel.world_size,
            sharded=self.sharded is not None,
            precision_reason=precision_reason,
        )

    def _wrap_for_training(self) -> None:
        """Build the training wrapper and the optimizer over the adapter's current weights."""
        # Training runs through the DDP wrapper, which sums gradients over processes;
        # sampling and checkpoints use the PEFT model itself. A sharded model syncs by itself.
        self.train_model = (
            DistributedDataParallel(self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
            if self.data_parallel.enabled and not self.sharded
            else self.model
        )
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        adamw = self.adamw
        # The fused kernel updates all LoRA tensors at once: a few ms a step instead of ~15 on CPU.
        self.optimizer = torch.optim.AdamW(
            trainable, lr=1e-4, betas=(adamw.beta1, adamw.beta2), eps=adamw.eps, weight_decay=adamw.weight_decay,
            fused=True,
        )

    def _trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @property
    def lora_rank(self) -> int:
        return self.model.peft_config["default"].r

    def grow_lora_rank(self, rank: int) -> None:
        """Widen every LoRA adapter from its rank r to `rank`, leaving the model's outputs unchanged.

        How the adapter grows: each adapted layer computes x·Aᵀ·Bᵀ·(alpha / r). A (r × in)
        gets `rank - r` new rows, initialised as PEFT initialises A (Kaiming-uniform), and B
        (out × r) gets `rank - r` zero columns, so B·A is unchanged and the new directions
        start at zero and learn from the next step on (exactly how a fresh LoRA starts).
        alpha is multiplied by rank / r, so the scaling alpha / r stays the same. AdamW's
        moments restart for every adapter weight: the old ones no longer match the shapes.
        The new rows come from a generator seeded by the backend's seed and `rank`, never
        from the global random state, so a resumed run grows the same adapter. The saved
        adapter_config.json carries the new r and lora_alpha, so PEFT loads the grown adapter.
        """
        config = self.model.peft_config["default"]
        old_rank = config.r
        if rank <= old_rank:
            raise ValueError(f"the LoRA rank can only grow: it is {old_rank}, asked for {rank}")
        config.lora_alpha = config.lora_alpha * rank / old_rank
        config.r = rank
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed((self.seed * 1_000_003 + rank) % 2**63)
            for layer in self.model.modules():
                if not isinstance(layer, LoraLayer):
                    continue
                old_a = layer.lora_A["default"].weight.detach().clone()
                old_b = layer.lora_B["default"].weight.detach().clone()
                layer.update_layer("default", rank, config.lora_alpha, config)  # PEFT's own init: A random, B zero
                with torch.no_grad():
                    layer.lora_A["default"].weight[:old_rank] = old_a
                    layer.lora_B["default"].weight[:, :old_rank] = old_b
        self._wrap_for_training()
        self.info = replace(self.info, trainable_parameters=self._trainable_parameters())

    @classmethod
    def from_config(cls, config) -> "LocalBackend":
        """Resolve `config.base_model` to weights and build the backend from the config's training keys."""
        processes = DataParallel.from_env().world_size
        if config.batch_size < processes:
            raise UsageError(
                f"batch_size {config.batch_size} is smaller than the {processes} data-parallel processes; "
                f"set batch_size to at least {processes} so every process has an example to train on."
            )
        if config.distributed == "fsdp" and config.batch_size % processes:
            # Every sharded forward pass is a collective: all processes must run as many
            # micro-batches, so they need equal shares of the batch.
            raise UsageError(
                f"distributed: fsdp needs batch_size ({config.batch_size}) to be a multiple of the {processes} "
                f"processes; set batch_size to {processes * -(-config.batch_size // processes)}."
            )
        model_dir = resolve_base_model(config.base_model)
        _check_fits(model_dir, config, processes)
        return cls(
            model_dir,
            base_model=config.base_model,
            lora_rank=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            lora_target_modules=config.lora_target_modules,
            micro_batch_size=config.micro_batch_size,
            packing=config.packing,
            precision=config.precision,
            gradient_checkpointing=config.gradient_checkpointing,
            distributed=config.distributed,
            adamw=AdamWSettings.from_config(config),
            device=config.device,
            seed=config.seed,
            renderer_name=config.renderer_name,
            eval_batch_size=config.eval_batch_size,
        )

    def _train_autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the batch's mean loss per target token.

        The batch (the whole step's, the same in every data-parallel process) is shared out
        among processes and cut into micro-batches (gradient accumulation); each summed
        micro-batch loss is divided by the whole batch's target-token count, so the gradient
        equals that of one big batch in one process.
        """
        self.train_model.train()
        total_tokens = sum(e.n_target_tokens for e in batch)
        # DDP averages gradients over processes; scaling by their number turns that into the sum.
        scale = self.data_parallel.world_size / total_tokens
        parts = micro_batches(batch, self.micro_batch_size, self.data_parallel.rank, self.data_parallel.world_size)
        layout = pack if self.packing else collate
        loss_sum, n_input, n_pad = 0.0, 0, 0
        for i, part in enumerate(parts):
            tensors = layout(part, self.tokenizer.pad_token_id)
            tensors = {k: v.to(self.device) for k, v in tensors.items()}
            n_real = sum(len(e.input_ids) for e in part)
            n_input, n_pad = n_input + n_real, n_pad + tensors["input_ids"].numel() - n_real
            last = i == len(parts) - 1
            # Gradients are summed across processes once, on the last micro-batch.
            if self.sharded:
                self.sharded.set_requires_gradient_sync(last)
            plain = last or not self.data_parallel.enabled or self.sharded
            sync = nullcontext() if plain else self.train_model.no_sync()
            with sync:
                micro_loss = self._summed_loss(tensors)
                (micro_loss * scale).backward()
            loss_sum += micro_loss.item()
        loss_sum, n_input, n_pad = self.data_parallel.sum([loss_sum, n_input, n_pad], self.device)
        return StepMetrics(loss_sum=loss_sum, n_tokens=total_tokens, n_input_tokens=int(n_input), n_pad_tokens=int(n_pad))

    def _summed_loss(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy summed over the target tokens of one micro-batch (padded or packed).

        Logits are computed only where the next token is a target: the vocabulary
        projection and its softmax are a large share of a small model's step, and prompt
        positions do not need them.
        """
        targets = tensors["labels"][:, 1:]
        predicts = targets != IGNORE_INDEX
        with self._train_autocast():
            logits = self.train_model(
                input_ids=tensors["input_ids"],
                attention_mask=tensors.get("attention_mask"),
                position_ids=tensors.get("position_ids"),
                logits_to_keep=F.pad(predicts, (0, 1), value=False),
                use_cache=False,
            ).logits
        return F.cross_entropy(logits.float(), targets[predicts], reduction="sum")

    def optim_step(self, learning_rate: float) -> None:
        """Clip the gradient norm (when `max_grad_norm` > 0), take an AdamW step, clear gradients."""
        if self.adamw.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], self.adamw.max_grad_norm
            )
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def sampler(self, *, with_adapter: bool = True) -> LocalSampler:
        """A sampler on the current weights, batching concurrent requests (`eval_batch_size`).

        `with_adapter=False` generates with the base weights alone. A sharded model
        generates in lock-step with the other processes (call `end_sampling` when done).
        """
        def generate(prompts: list[list[int]], num_samples: int, params: SamplingParams) -> list[list[SampledSequence]]:
            settings = (num_samples, params, with_adapter)
            if self._lockstep:
                return self._lockstep(settings, prompts)
            return self._generate_with(settings, prompts)

        return LocalSampler(generate, self.eval_batch_size)

    def end_sampling(self) -> None:
        """Under FSDP, keep generating with the other processes until their evaluations are done too."""
        if self._lockstep:
            self._lockstep.finish()

    def _generate_with(self, settings: tuple, prompts: list[list[int]]) -> list[list[SampledSequence]]:
        num_samples, params, with_adapter = settings
        # On CPU evaluation samples in fp32 whatever the training precision, so that greedy
        # answers match those of the adapter reloaded in fp32 by PEFT.
        on_gpu_bf16 = self.device.type == "cuda" and self.precision == "bf16"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_gpu_bf16 else nullcontext()
        with nullcontext() if with_adapter else self.model.disable_adapter():
            # synced_gpus: sharded, every process runs forward passes until all have finished
            # (sampling at temperature > 0 may end the processes' batches at different lengths).
            return generate_batch(
                self.model, self.tokenizer, self.device, prompts, num_samples, params,
                autocast=autocast, synced_gpus=self.sharded is not None,
            )

    def save_checkpoint(self, directory: Path) -> str:
        """Write `directory/adapter` (PEFT format) and `directory/trainer` (optimizer + RNG);
        return the adapter's path."""
        directory = Path(directory)
        # Sharded, every process gathers the whole adapter (a collective) and writes it into
        # its own run folder, as unsharded processes do.
        adapter = get_model_state_dict(self.model, options=FULL_ADAPTER) if self.sharded else None
        self.model.save_pretrained(directory / "adapter", state_dict=adapter)
        optimizer = (
            get_optimizer_state_dict(self.model, self.optimizer, options=FULL_ADAPTER)
            if self.sharded else self.optimizer.state_dict()
        )
        (directory / "trainer").mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "optimizer": optimizer,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(),
            },
            directory / "trainer" / TRAINER_STATE_FILE,
        )
        return str(directory / "adapter")

    def load_adapter(self, adapter_dir: Path) -> None:
        """Load a PEFT adapter's weights into this backend's adapter (same rank and target modules)."""
        weights = load_file(Path(adapter_dir) / "adapter_model.safetensors", device=str(self.device))
        result = set_peft_model_state_dict(self.model, weights)
        if result.unexpected_keys:
            raise ValueError(f"adapter {adapter_dir} does not fit this model: unexpected {result.unexpected_keys[:3]}")

    def load_checkpoint(self, directory: Path) -> None:
        """Restore a checkpoint; an adapter saved after growing its rank grows this one first."""
        directory = Path(directory)
        saved_rank = json.loads((directory / "adapter" / "adapter_config.json").read_text())["r"]
        if saved_rank > self.lora_rank:
            self.grow_lora_rank(saved_rank)
        elif saved_rank < self.lora_rank:
            raise ValueError(
                f"{directory} holds a rank-{saved_rank} adapter, smaller than this rank-{self.lora_rank} one; "
                "adapters only grow"
            )
        self.load_adapter(directory / "adapter")
        state = torch.load(directory / "trainer" / TRAINER_STATE_FILE, weights_only=False)
        if self.sharded:
            set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"], options=FULL_ADAPTER)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
