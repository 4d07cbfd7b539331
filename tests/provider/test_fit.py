"""A LoRA rank the model cannot use, or a run the machine's memory cannot hold, is refused
before any weight loads, saying what fits (provider/fit.py)."""

from __future__ import annotations

import json

import pytest

from inspect_tinker.cli import main
from inspect_tinker.provider.fit import GB, check_memory, check_rank, estimate_memory, model_shape
from inspect_tinker.errors import UsageError

# The tiny Llama of conftest.py: hidden 16, MLP 32, one key-value head of 8 dimensions.
FIT = dict(rank_key="lora_rank", tokens=1024, activation_bytes=2, gradient_checkpointing=False, shards=1, device="cpu")


def test_the_largest_useful_rank_is_the_widest_adapted_layers_smaller_side(tiny_model_dir):
    shape = model_shape(tiny_model_dir, "all-linear")
    # q, k, v, o, gate, up, down in each of 2 blocks; lm_head is not adapted.
    assert sorted(set(shape.adapted)) == [(16, 8), (16, 16), (16, 32), (32, 16)] and len(shape.adapted) == 14
    assert shape.max_useful_rank == 16
    assert model_shape(tiny_model_dir, ["k_proj", "v_proj"]).max_useful_rank == 8
    with pytest.raises(UsageError, match="lora_target_modules: .*not found"):
        model_shape(tiny_model_dir, ["no_such_layer"])


def test_a_rank_no_layer_can_use_is_refused_naming_the_maximum(tiny_model_dir):
    shape = model_shape(tiny_model_dir, "all-linear")
    check_rank(shape, 16)
    with pytest.raises(UsageError, match=r"lora_rank 17 is larger than .* Set lora_rank to at most 16"):
        check_rank(shape, 17)


def test_a_run_over_the_free_memory_is_refused_with_the_largest_rank_that_fits(tiny_model_dir):
    shape = model_shape(tiny_model_dir, "all-linear")
    at_1, at_16 = (estimate_memory(shape, r, 1024, 2, False).total for r in (1, 16))
    available = (at_1 + at_16) / 2
    with pytest.raises(UsageError, match=r"lora_rank 16 needs about .* GB .* Set lora_rank to at most (\d+)") as refused:
        check_memory(shape, lora_rank=16, available=available, **FIT)
    fits = int(refused.value.args[0].rsplit("at most ", 1)[1].split(",")[0])
    # The rank it names fits and the next one does not.
    assert estimate_memory(shape, fits, 1024, 2, False).total <= available < estimate_memory(shape, fits + 1, 1024, 2, False).total
    with pytest.raises(UsageError, match="even rank 1 needs"):
        check_memory(shape, lora_rank=16, available=at_1 / 2, **FIT)


def test_lora_rank_100000_is_refused_with_exit_2_before_the_model_loads(write_run_config, capsys):
    config = write_run_config()
    assert main(["run", str(config), "--set", "lora_rank=100000"]) == 2
    err = capsys.readouterr().err
    assert "lora_rank 100000 is larger than any adapted layer can use" in err and "at most 16" in err
    assert "Traceback" not in err


def test_a_model_too_large_for_the_machine_is_refused_before_its_weights_are_read(write_run_config, tmp_path, capsys):
    # Llama 3.1 405B's shapes and nothing else: no weights, no tokenizer. Loading would fail
    # otherwise; the refusal must come first. Its 405.85 billion parameters in fp32 are 1623.4 GB.
    model = tmp_path / "llama-405b"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 16384, "intermediate_size": 53248,
        "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8, "vocab_size": 128256,
    }))
    config = write_run_config(base_model=str(model))
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "lora_rank 16 needs about" in err and "base weights 1623.4 GB" in err and "even rank 1 needs" in err
    assert "Traceback" not in err
