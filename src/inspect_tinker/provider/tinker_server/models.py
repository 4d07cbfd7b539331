"""The models a local Tinker server can serve, as (name, folder) pairs.

The name is what clients pass as `base_model` (the server offers only that one); the folder
holds safetensors weights, config.json and the tokenizer, which SkyRL's JAX backend loads.
- `bundled`: SmolLM2-135M-Instruct, the bundled model, de-quantized by inspect-tinker's own model
  step (its cache is shared with the local backend).
- `tiny`: a randomly initialised Llama of a few MB with SmolLM2's chat tokenizer: every
  request of the protocol in seconds, for tests of the protocol; its answers are noise.
- a folder: any Llama- or Qwen3-family Hugging Face model folder; its name is its path.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from inspect_tinker.provider.base_model import BUNDLED_MODEL_NAME, cache_root, resolve_base_model

TINY_MODEL_NAME = "tiny-llama"
_TINY_VERSION = 1  # bump when write_tiny_llama changes, so a cached copy is not served stale


@dataclass(frozen=True)
class ServedModel:
    name: str  # the base_model clients name
    folder: Path


def served_model(spec: str) -> ServedModel:
    """`bundled`, `tiny` or a model folder as what the server serves. Raises UsageError for
    a folder that is not a Hugging Face model folder."""
    if spec == "bundled":
        return ServedModel(BUNDLED_MODEL_NAME, resolve_base_model(BUNDLED_MODEL_NAME))
    if spec == "tiny":
        return ServedModel(TINY_MODEL_NAME, _tiny_model_folder())
    folder = resolve_base_model(str(Path(spec).expanduser().resolve()))
    return ServedModel(str(folder), folder)


def write_tiny_llama(folder: Path, tokenizer) -> None:
    """Save a randomly initialised 2-layer Llama (hidden size 16) with `tokenizer` in `folder`.

    Seeded, so every copy has the same weights. Its embeddings are initialised large enough
    that LoRA can move the tied output logits within a few steps.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        initializer_range=0.5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _tiny_model_folder() -> Path:
    folder = cache_root() / "tinker-server" / "models" / f"{TINY_MODEL_NAME}-v{_TINY_VERSION}"
    if (folder / "model.safetensors").is_file():
        return folder
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(BUNDLED_MODEL_NAME))
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed, so an interrupted first start leaves no half model.
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    write_tiny_llama(tmp, tokenizer)
    try:
        tmp.rename(folder)
    except OSError:  # another process got there first; its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
