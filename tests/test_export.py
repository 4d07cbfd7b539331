"""Export: the PEFT adapter alone, or merged into a plain model that answers the same."""

from __future__ import annotations

import json

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from evaltune.cli import main


def greedy(model, tokenizer, question: str) -> list[int]:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                           return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, prompt["input_ids"].shape[1]:].tolist()


def test_a_merged_export_answers_like_the_adapter(write_run_config, tiny_model_dir, tokenizer, tmp_path, capsys):
    # No baseline: an untrained model meets a bar of 0 and the run would end before training.
    config = write_run_config(eval_threshold=0.0, baseline_eval=False, learning_rate=5e-2, steps_per_round=6)
    assert main(["run", "--config", str(config)]) == 0
    run_dir = tmp_path / "runs" / "test"
    assert main(["export", str(run_dir), "--best", "--merged", str(tmp_path / "merged")]) == 0
    assert main(["export", str(run_dir), "--round", "1", "--adapter", str(tmp_path / "adapter")]) == 0

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "adapter").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    questions = ["What is the capital of Valdoria?", "Who founded Valdoria?", "Hello?"]
    for q in questions:
        assert greedy(merged, tokenizer, q) == greedy(adapted, tokenizer, q)
    # Training changed the weights, so the comparison above is not base against base.
    assert any(not torch.equal(a, b) for a, b in zip(merged.parameters(), base.parameters()))


def test_exporting_into_an_existing_folder_or_a_missing_round_is_refused(write_run_config, tmp_path, capsys):
    config = write_run_config(eval_threshold=0.0, baseline_eval=False)
    main(["run", "--config", str(config)])
    run_dir = tmp_path / "runs" / "test"
    (tmp_path / "taken").mkdir()
    assert main(["export", str(run_dir), "--adapter", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--round", "7", "--adapter", str(tmp_path / "x")]) == 2
    assert "no complete adapter for round 7" in capsys.readouterr().err
