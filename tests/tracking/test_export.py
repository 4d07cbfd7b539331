"""Export: the PEFT adapter alone, or merged into a plain model that answers the same."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from inspect_tinker.cli import main
from inspect_tinker.tracking import RunFolder


def greedy(model, tokenizer, question: str) -> list[int]:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                           return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, prompt["input_ids"].shape[1]:].tolist()


def test_a_merged_export_answers_like_the_adapter(write_run_config, tiny_model_dir, tokenizer, tmp_path, capsys):
    # No baseline: an untrained model meets a bar of 0 and the run would end before training.
    config = write_run_config(eval_threshold=0.0, baseline_eval=False, learning_rate=5e-2, steps_per_round=6)
    assert main(["run", str(config)]) == 0
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
    main(["run", str(config)])
    run_dir = tmp_path / "runs" / "test"
    (tmp_path / "taken").mkdir()
    assert main(["export", str(run_dir), "--adapter", str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--round", "7", "--adapter", str(tmp_path / "x")]) == 2
    assert "no complete adapter for round 7" in capsys.readouterr().err


def test_eval_and_export_of_a_killed_run_use_the_best_round_evaluated_so_far(run_config_writer, tmp_path, capsys):
    """A real run killed (SIGKILL) while training round 2: round 1 is its best round so far."""
    # Round 1 trains 2 steps; with no earlier score it counts as rising, so more_steps makes round 2
    # last two million steps: the kill lands in round 2 however slow or fast the machine is.
    config = run_config_writer(tmp_path, max_rounds=3, steps_per_round=2, eval_threshold=1.0, baseline_eval=False,
                               policy="more_steps", steps_growth=1e6)
    run_dir = tmp_path / "runs" / "test"
    log = tmp_path / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "inspect_tinker", "run", str(config)],
                            cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 1200  # generous: on a loaded machine the start alone can take minutes
        while not any(e["event"] == "step" and e["round"] == 2 for e in RunFolder(run_dir).read_events()):
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()
    state = json.loads((run_dir / "state.json").read_text())
    assert state["phase"] == "training" and state["round"] == 2 and not (run_dir / "summary.json").exists()

    capsys.readouterr()
    assert main(["eval", "--run", str(run_dir), "--run-name", "check"]) == 1  # bar 1.0: not met
    summary = json.loads((tmp_path / "runs" / "check" / "summary.json").read_text())
    assert summary["adapter"] == str(run_dir / "rounds" / "1" / "adapter")
    assert main(["export", str(run_dir), "--adapter", str(tmp_path / "best")]) == 0
    saved = (run_dir / "rounds" / "1" / "adapter" / "adapter_model.safetensors").read_bytes()
    assert (tmp_path / "best" / "adapter_model.safetensors").read_bytes() == saved

    capsys.readouterr()
    for command in (["eval", "--run", str(run_dir)], ["export", str(run_dir), "--adapter", str(tmp_path / "x")]):
        assert main([*command, "--round", "2"]) == 2  # in progress: nothing saved yet
        assert "no complete adapter for round 2 (missing or damaged); rounds evaluated so far: 1." in capsys.readouterr().err
    assert main(["export", str(run_dir), "--adapter", str(tmp_path / "x"), "--round", "0"]) == 2
    assert f"round 0 of {run_dir} is the base model" in capsys.readouterr().err
