"""The `local` backend: PyTorch + PEFT LoRA in this process, on CPU or GPU.

The base weights are loaded once; every round keeps training the same adapter. Started by
`torchrun` or `accelerate launch`, several such processes train one adapter together
(data parallel, each with a full copy of the model or a shard of it; see provider/distributed.py).
"""

from __future__ import annotations

import copy
import json
import random
from itertools import accumulate
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

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
from inspect_tinker.provider.backend import (
    BackendInfo, PolicyDatum, PolicyLoss, PolicyStepMetrics, SampledSequence, SamplingParams, StepMetrics,
    example_weights,
)
from inspect_tinker.provider.distributed import DataParallel, Lockstep, shard
from inspect_tinker.provider.fit import available_memory, check_memory, check_rank, model_shape
from inspect_tinker.provider.local_sampling import LocalSampler, generate_batch
from inspect_tinker.provider.policy_loss import clipped_count, per_token_loss
from inspect_tinker.provider.precision import choose_cpu_precision
from inspect_tinker.provider.settings import LocalBackendSettings
from inspect_tinker.errors import UsageError
from inspect_tinker.provider.base_model import resolve_base_model

TRAINER_STATE_FILE = "trainer_state.pt"
# Under FSDP the adapter and its optimizer state are gathered whole for a checkpoint (they
# are small); the frozen base weights are left out and never gathered.
FULL_ADAPTER = StateDictOptions(full_state_dict=True, ignore_frozen_params=True)


def attention_for(device: torch.device) -> str:
    """The attention implementation the backend trains with on `device` (the benchmark gives its peer the same)."""
    # On CPU, PyTorch's fused attention with a mask (padding or packing) trained 10 to 40 %
    # slower than plain matmul attention in bf16 on our benchmark (bench/README.md).
    return "eager" if device.type == "cpu" else "sdpa"


def pick_device(name: str) -> torch.device:
    """`auto`: CUDA when present, else CPU; otherwise the device named.

    Raises UsageError for `cuda` where PyTorch sees no CUDA device (a CPU build, or no GPU),
    before any weights are loaded: otherwise the first tensor moved there fails deep inside torch.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        build = f"this PyTorch ({torch.__version__}) is built without CUDA" if torch.version.cuda is None \
            else "PyTorch sees no CUDA device here"
        raise UsageError(f"device cuda: {build}; use device auto or cpu, or install a CUDA build of PyTorch (see README).")
    return torch.device(name)


def _check_fits(model_dir: Path, settings: LocalBackendSettings, processes: int) -> None:
    """Refuse, before loading anything, a LoRA rank the model cannot use or a run the device's memory cannot hold."""
    shape = model_shape(model_dir, settings.lora_target_modules)
    check_rank(shape, settings.lora_rank)
    rank, rank_key = settings.lora_rank, "lora_rank"
    if settings.max_lora_rank is not None:  # memory for the largest rank the adapter may grow to (a useful one)
        grows_to = min(settings.max_lora_rank, shape.max_useful_rank)
        if grows_to > rank:
            rank, rank_key = grows_to, "max_lora_rank"
    per_process = -(-settings.batch_size // processes)  # each process trains its share of the batch
    device = pick_device(settings.device)
    check_memory(
        shape, lora_rank=rank, rank_key=rank_key,
        tokens=min(settings.micro_batch_size or per_process, per_process) * settings.max_seq_length,
        # `auto` counts as bf16, the smaller of what it may pick: the estimate refuses only what cannot fit.
        activation_bytes=4 if settings.precision == "fp32" else 2,
        gradient_checkpointing=settings.gradient_checkpointing,
        shards=processes if settings.distributed == "fsdp" else 1, available=available_memory(device), device=str(device),
    )


def _token_indices(example: TokenizedExample, start: int) -> list[int]:
    """`example`'s ids with its trained (completion) tokens replaced by their indices into the
    step's arrays of completion tokens, the first being `start`."""
    n = sum(example.loss_mask)
    return example.input_ids[: len(example.input_ids) - n] + list(range(start, start + n))


class LocalBackend:
    """LoRA training and generation on a model held in memory."""

    def __init__(self, model_dir: Path, settings: LocalBackendSettings):
        """The backend of the model in `model_dir` (`settings.base_model` resolved), trained and sampled as `settings` say."""
        self.data_parallel = DataParallel.from_env()
        self.device = pick_device(settings.device)
        if self.data_parallel.enabled:
            self.device = self.data_parallel.start(self.device)
        self.micro_batch_size = settings.micro_batch_size
        self.seed = settings.seed
        self.packing = settings.packing
        self.adamw = settings.adamw
        self.precision, precision_reason = settings.precision, None
        if settings.precision == "auto" and self.device.type == "cuda":
            self.precision = "bf16"
        elif settings.precision == "auto":  # on CPU, measured (provider/precision.py); every process trains as process 0 chose
            choice = choose_cpu_precision() if self.data_parallel.rank == 0 else None
            choice = self.data_parallel.gather(choice)[0] if self.data_parallel.enabled else choice
            self.precision, precision_reason = choice.precision, choice.reason
        torch.manual_seed(settings.seed)  # the adapter's random init depends on it
        self.eval_batch_size = settings.eval_batch_size
        self.generation_precision = settings.sampling_precision
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.renderer = use_renderer(self.tokenizer, settings.renderer_name, settings.base_model)
        # FSDP shards in place, once; alone, a process has nothing to shard over.
        sharding = settings.distributed == "fsdp" and self.data_parallel.enabled
        base = AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32, attn_implementation=attention_for(self.device)
        )
        if not sharding:  # sharded, fully_shard moves one block at a time to the device and keeps its shard there
            base = base.to(self.device)
        if settings.gradient_checkpointing:
            # Non-reentrant checkpointing needs no grad-requiring inputs, which frozen embeddings lack.
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(base, lora)
        self.sharded = shard(base) if sharding else None
        self._lockstep = Lockstep(self.data_parallel, self._generate_with) if self.sharded else None
        self._wrap_for_training()
        self.info = BackendInfo(
            base_model=settings.base_model,
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
    def from_settings(cls, settings: LocalBackendSettings) -> "LocalBackend":
        """Resolve `settings.base_model` to weights, check that the run fits, and build the backend."""
        processes = DataParallel.from_env().world_size
        if settings.batch_size < processes:
            raise UsageError(
                f"batch_size {settings.batch_size} is smaller than the {processes} data-parallel processes; "
                f"set batch_size to at least {processes} so every process has an example to train on."
            )
        if settings.distributed == "fsdp" and settings.batch_size % processes:
            # Every sharded forward pass is a collective: all processes must run as many
            # micro-batches, so they need equal shares of the batch.
            raise UsageError(
                f"distributed: fsdp needs batch_size ({settings.batch_size}) to be a multiple of the {processes} "
                f"processes; set batch_size to {processes * -(-settings.batch_size // processes)}."
            )
        model_dir = resolve_base_model(settings.base_model)
        _check_fits(model_dir, settings, processes)
        return cls(model_dir, settings)

    def _train_autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the batch's cross-entropy: each example's mean loss per target
        token, averaged over the examples (`example_weights`, the objective the tinker backend
        gives the service too). The metrics' loss is the mean per target token of the whole batch."""
        total_tokens = sum(e.n_target_tokens for e in batch)
        weights = torch.tensor(example_weights(batch), dtype=torch.float32, device=self.device)
        position = {id(e): k for k, e in enumerate(batch)}

        def micro_loss(part: list[TokenizedExample], tensors: dict[str, torch.Tensor]):
            losses = self._token_losses(tensors)
            # Laid out like the tokens (packing reorders examples), each example's position in the
            # batch stands at its trained positions: the weight of every trained token.
            owners = self._layout([TokenizedExample([position[id(e)]] * len(e.input_ids), e.loss_mask) for e in part], 0)
            owner = owners["labels"][:, 1:].to(self.device)
            return (losses * weights[owner[owner != IGNORE_INDEX]]).sum(), [losses.detach().sum().item()]

        [loss_sum], n_input, n_pad = self._accumulate(batch, micro_loss)
        return StepMetrics(loss_sum=loss_sum, n_tokens=total_tokens, n_input_tokens=int(n_input), n_pad_tokens=int(n_pad))

    def example_losses(self, examples: list[TokenizedExample]) -> list[float]:
        """Each example's mean cross-entropy per target token under the current weights, no gradient.

        One example per forward pass: the few records a round weighs (policies/focus.py) cost
        little, and a mean per example needs no untangling of a packed micro-batch's tokens.
        """
        losses = []
        with torch.no_grad():
            for example in examples:
                tensors = {k: v.to(self.device) for k, v in self._layout([example], self.tokenizer.pad_token_id).items()}
                losses.append(self._token_losses(tensors).mean().item())
        return losses

    def forward_backward_policy(self, data: list[PolicyDatum], loss: PolicyLoss) -> PolicyStepMetrics:
        """Accumulate gradients of the step's mean RL loss per completion token (`loss`, as
        provider/policy_loss.py defines it), on the sampled tokens exactly as they were sampled.

        Each datum trains as an example of its prompt and completion tokens with the loss mask
        on the completion, so micro-batches, packing and data parallelism are forward_backward's.
        """
        examples = [TokenizedExample(d.prompt_tokens + d.completion_tokens, [0] * len(d.prompt_tokens) + [1] * len(d.completion_tokens))
                    for d in data]
        # The step's completion tokens, datum after datum: where each datum's start, and every
        # token's sampling logprob and advantage.
        starts = dict(zip(map(id, examples), accumulate((len(d.completion_tokens) for d in data), initial=0)))
        sampling = torch.tensor([lp for d in data for lp in d.sampling_logprobs], dtype=torch.float32, device=self.device)
        advantages = torch.tensor([d.advantage for d in data for _ in d.completion_tokens], dtype=torch.float32, device=self.device)

        def micro_loss(part: list[TokenizedExample], tensors: dict[str, torch.Tensor]):
            logprobs = -self._token_losses(tensors)
            # The layout places tokens by the examples' lengths and masks alone, so laying out,
            # instead of token ids, each completion token's index into the step's arrays puts
            # at every trained position the index of that token's sampling logprob and advantage.
            positions = [TokenizedExample(_token_indices(e, starts[id(e)]), e.loss_mask) for e in part]
            labels = self._layout(positions, 0)["labels"][:, 1:].to(self.device)
            at = labels[labels != IGNORE_INDEX]
            token_losses = per_token_loss(logprobs, sampling[at], advantages[at], loss)
            stats = [token_losses.detach().sum().item(), clipped_count(logprobs.detach(), sampling[at], advantages[at], loss),
                     (sampling[at] - logprobs.detach()).sum().item()]
            return token_losses.sum() / n_tokens, stats

        n_tokens = sum(len(d.completion_tokens) for d in data)
        [loss_sum, n_clipped, gap], _, _ = self._accumulate(examples, micro_loss)
        return PolicyStepMetrics(loss_sum=loss_sum, n_tokens=n_tokens, clip_fraction=n_clipped / n_tokens, kl_sample_train=gap / n_tokens)

    def _accumulate(self, batch: list[TokenizedExample], micro_loss) -> tuple[list[float], float, float]:
        """Accumulate gradients of the sum of `micro_loss` over the batch's micro-batches.

        The batch (the whole step's, the same in every data-parallel process) is shared out
        among processes and cut into micro-batches (gradient accumulation).
        `micro_loss(part, tensors)` gives a micro-batch's share of the step's objective (already
        normalised over the whole batch, so that the shares sum to it) and a list of numbers to
        sum over the micro-batches; the gradient equals that of one big batch in one process.
        Returns those sums and the real and padding tokens read, all over every process.
        """
        world_size = self.data_parallel.world_size
        # A process without an example would skip the collectives the others wait in; sharded,
        # every process must also run as many micro-batches as the others.
        if len(batch) < world_size or (self.sharded and len(batch) % world_size):
            raise ValueError(
                f"a step of {len(batch)} examples cannot be shared out evenly enough among {world_size} data-parallel "
                f"processes{' (sharded: a multiple of the processes is needed)' if self.sharded else ''}"
            )
        self.train_model.train()
        # DDP averages gradients over processes; scaling by their number turns that into the sum.
        scale = world_size
        parts = micro_batches(batch, self.micro_batch_size, self.data_parallel.rank, world_size)
        sums, n_input, n_pad = [], 0, 0
        for i, part in enumerate(parts):
            tensors = self._layout(part, self.tokenizer.pad_token_id)
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
                loss, stats = micro_loss(part, tensors)
                (loss * scale).backward()
            sums = [a + b for a, b in zip(sums, stats)] if sums else stats
        *sums, n_input, n_pad = self.data_parallel.sum([*sums, n_input, n_pad], self.device)
        return sums, n_input, n_pad

    def _layout(self, examples: list[TokenizedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
        return pack(examples, pad_token_id) if self.packing else collate(examples, pad_token_id)

    def _token_losses(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of each target token of one micro-batch (padded or packed), row by row.

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
        return F.cross_entropy(logits.float(), targets[predicts], reduction="none")

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

    def sampling_precision(self, *, rollout: bool) -> str:
        """"bf16" or "fp32": `generation.precision`, or for `auto`, on CPU fp32 for an evaluation
        (the gate's greedy answers are those of the adapter reloaded in fp32 by PEFT) and the
        training precision for an RL rollout (speed: the importance ratio corrects for the
        difference); on GPU the training precision for both."""
        if self.generation_precision != "auto":
            return self.generation_precision
        return self.precision if rollout or self.device.type == "cuda" else "fp32"

    def sampler(self, *, with_adapter: bool = True, rollout: bool = False) -> LocalSampler:
        """A sampler on the current weights, batching concurrent requests (`eval_batch_size`).

        `with_adapter=False` generates with the base weights alone; `rollout` samples in the
        rollouts' precision (`sampling_precision`). A sharded model generates in lock-step with
        the other processes (call `end_sampling` when done).
        """
        precision = self.sampling_precision(rollout=rollout)
        if self.device.type == "cpu" and not self.sharded and (with_adapter or precision == "bf16"):
            # On CPU a sampler generates from a copy of the weights with the adapter merged in: the
            # unmerged adapter's small matmuls cost 18 % of a batch's CPU time on the bundled model,
            # the copy under a second (bench/README.md), and its answers are those of the adapter
            # reloaded and merged by `-M model_path=`. In bf16 the copy is stored in bf16: autocast
            # would cast every weight at every decode step, more bytes than fp32 reads. The copy
            # holds the weights as they are now, as a sampler should. (On GPU memory is dearer.)
            weights = self._merged_copy(with_adapter, torch.bfloat16 if precision == "bf16" else torch.float32)
            return LocalSampler(lambda prompts, num_samples, params: generate_batch(
                weights, self.tokenizer, self.device, prompts, num_samples, params), self.eval_batch_size)

        def generate(prompts: list[list[int]], num_samples: int, params: SamplingParams) -> list[list[SampledSequence]]:
            settings = (num_samples, params, with_adapter, precision)
            if self._lockstep:
                return self._lockstep(settings, prompts)
            return self._generate_with(settings, prompts)

        return LocalSampler(generate, self.eval_batch_size)

    def _merged_copy(self, with_adapter: bool, dtype: torch.dtype):
        """A plain transformers model in `dtype`: the base weights with the adapter merged in, or without it."""
        peft_copy = copy.deepcopy(self.model)
        plain = peft_copy.merge_and_unload() if with_adapter else peft_copy.unload()
        return plain.to(dtype).eval()

    def end_sampling(self) -> None:
        """Under FSDP, keep generating with the other processes until their evaluations are done too."""
        if self._lockstep:
            self._lockstep.finish()

    def _generate_with(self, settings: tuple, prompts: list[list[int]]) -> list[list[SampledSequence]]:
        num_samples, params, with_adapter, precision = settings
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
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
