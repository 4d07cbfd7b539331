"""`learning_rate: auto`: one formula for every engine, from the model family and hidden size."""

import pytest

from inspect_tinker.provider.backend import BackendInfo
from inspect_tinker.errors import UsageError
from inspect_tinker.policies.learning_rate import model_family, recommended_lora_learning_rate, resolve_learning_rate


def info(base_model, model_type=None, hidden_size=None):
    return BackendInfo(base_model, "cpu", None, None, "fp32", model_type=model_type, hidden_size=hidden_size)


def test_the_recommended_rate_follows_the_family_formula():
    # 5e-5 x 10 x (2000 / hidden) ** p: Llama p = 0.781, Qwen p = 0.0775 (tinker-cookbook 0.6.1).
    assert recommended_lora_learning_rate("llama", 4096) == pytest.approx(2.857e-4, rel=1e-3)  # Llama-3.1-8B
    assert recommended_lora_learning_rate("qwen", 4096) == pytest.approx(4.730e-4, rel=1e-3)  # Qwen3-8B
    assert recommended_lora_learning_rate("llama", 2000) == pytest.approx(5e-4)
    # Smaller models get larger rates.
    assert recommended_lora_learning_rate("llama", 576) > recommended_lora_learning_rate("llama", 8192)


def test_the_family_comes_from_the_architecture_or_the_model_name():
    assert model_family("llama", "SmolLM2-135M-Instruct") == "llama"
    assert model_family(None, "Qwen/Qwen3-8B") == "qwen"
    assert model_family("qwen3_moe", "Qwen/Qwen3-30B-A3B") == "qwen"
    assert model_family("gpt_oss", "openai/gpt-oss-20b") is None


def test_a_number_is_kept_and_auto_is_resolved_from_the_engine_info():
    assert resolve_learning_rate(1e-3, info("x")) == 1e-3
    assert resolve_learning_rate("auto", info("meta-llama/Llama-3.1-8B", "llama", 4096)) == pytest.approx(2.857e-4, rel=1e-3)


@pytest.mark.parametrize(
    ("engine_info", "shown"),
    [
        (info("openai/gpt-oss-20b", "gpt_oss", 2880), "architecture gpt_oss, hidden size 2880"),
        (info("SmolLM2-135M-Instruct"), "architecture unknown, hidden size unknown"),
    ],
)
def test_auto_for_an_unknown_family_or_size_says_to_set_a_number(engine_info, shown):
    with pytest.raises(UsageError, match=f"knows the Llama and Qwen model families only.*{shown}.*Set learning_rate to a number"):
        resolve_learning_rate("auto", engine_info)
