"""The `local` engine: PyTorch + PEFT LoRA in this process, on CPU or one GPU.

The base weights are loaded once; every round keeps training the same adapter.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from evaltune.data.batching import IGNORE_INDEX, collate
from evaltune.data.render import TokenizedExample
from evaltune.engines.base import Completion, EngineInfo, StepMetrics
from evaltune.models import resolve_base_model

TRAINER_STATE_FILE = "trainer_state.pt"


def _pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class LocalEngine:
    """LoRA training and generation on a model held in memory."""

    def __init__(
        self,
        model_dir: Path,
        *,
        base_model: str,
        lora_rank: int = 16,
        lora_alpha: float = 32.0,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | str = "all-linear",
        micro_batch_size: int | None = None,
        device: str = "auto",
        seed: int = 0,
    ):
        self.device = _pick_device(device)
        self.micro_batch_size = micro_batch_size
        torch.manual_seed(seed)  # the adapter's random init depends on it
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(self.device)
        lora = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=lora_target_modules,
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(base, lora)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
        self.info = EngineInfo(
            base_model=base_model,
            device=str(self.device),
            total_parameters=sum(p.numel() for p in self.model.parameters()),
            trainable_parameters=sum(p.numel() for p in trainable),
            dtype="bf16 autocast" if self.device.type == "cuda" else "fp32",
        )

    @classmethod
    def from_config(cls, config) -> "LocalEngine":
        """Resolve `config.base_model` to weights and build the engine from the config's LoRA keys."""
        return cls(
            resolve_base_model(config.base_model),
            base_model=config.base_model,
            lora_rank=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            lora_target_modules=config.lora_target_modules,
            micro_batch_size=config.micro_batch_size,
            device=config.device,
            seed=config.seed,
        )

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def forward_backward(self, batch: list[TokenizedExample]) -> StepMetrics:
        """Accumulate gradients of the batch's mean loss per target token.

        The batch is split into micro-batches (gradient accumulation); each micro-batch's
        summed loss is divided by the whole batch's target-token count, so the gradient
        equals that of one big batch.
        """
        self.model.train()
        total_tokens = sum(e.n_target_tokens for e in batch)
        size = self.micro_batch_size or len(batch)
        loss_sum = 0.0
        for start in range(0, len(batch), size):
            tensors = collate(batch[start : start + size], self.tokenizer.pad_token_id)
            tensors = {k: v.to(self.device) for k, v in tensors.items()}
            with self._autocast():
                logits = self.model(input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]).logits
            micro_loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(),
                tensors["labels"][:, 1:].flatten(),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            (micro_loss / total_tokens).backward()
            loss_sum += micro_loss.item()
        return StepMetrics(loss_sum=loss_sum, n_tokens=total_tokens)

    def optim_step(self, learning_rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def sample(
        self, prompts: list[list[int]], max_tokens: int, temperature: float, stop: list[str], *, with_adapter: bool = True
    ) -> list[Completion]:
        """Generate for all prompts in one left-padded batch; greedy when temperature is 0.

        `with_adapter=False` generates with the base weights alone.
        """
        self.model.eval()
        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for row, p in enumerate(prompts):
            input_ids[row, width - len(p) :] = torch.tensor(p)
            attention[row, width - len(p) :] = 1
        generation = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            top_p=None,
            top_k=None,
            pad_token_id=pad,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        with self._autocast(), (nullcontext() if with_adapter else self.model.disable_adapter()):
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device), generation_config=generation
            )
        completions = []
        for row in out[:, width:].tolist():
            eos_at = row.index(self.tokenizer.eos_token_id) if self.tokenizer.eos_token_id in row else None
            new = row[:eos_at] if eos_at is not None else [t for t in row if t != pad]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            stop_reason = "stop" if eos_at is not None else "max_tokens"
            for s in stop:
                if s in text:
                    text, stop_reason = text[: text.index(s)], "stop"
            completions.append(Completion(text=text.strip(), n_tokens=len(new), stop_reason=stop_reason))
        return completions

    def save_checkpoint(self, directory: Path) -> str:
        """Write `directory/adapter` (PEFT format) and `directory/trainer` (optimizer + RNG);
        return the adapter's path."""
        directory = Path(directory)
        self.model.save_pretrained(directory / "adapter")
        (directory / "trainer").mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "python_rng": random.getstate(),
                "numpy_rng": np.random.get_state(),
            },
            directory / "trainer" / TRAINER_STATE_FILE,
        )
        return str(directory / "adapter")

    def load_adapter(self, adapter_dir: Path) -> None:
        """Load a PEFT adapter's weights into this engine's adapter (same rank and target modules)."""
        weights = load_file(Path(adapter_dir) / "adapter_model.safetensors", device=str(self.device))
        result = set_peft_model_state_dict(self.model, weights)
        if result.unexpected_keys:
            raise ValueError(f"adapter {adapter_dir} does not fit this model: unexpected {result.unexpected_keys[:3]}")

    def load_checkpoint(self, directory: Path) -> None:
        directory = Path(directory)
        self.load_adapter(directory / "adapter")
        state = torch.load(directory / "trainer" / TRAINER_STATE_FILE, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
        np.random.set_state(state["numpy_rng"])
