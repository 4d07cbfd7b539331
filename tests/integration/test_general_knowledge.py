"""The packaged general-knowledge task on the real bundled model: its documented 20/20 through
Inspect's own `hf/` provider, and the original seed config (`simple_qa`), which the base
model passes untrained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from inspect_ai.log import read_eval_log

pytestmark = pytest.mark.integration


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspect_tinker", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800)


def test_inspect_evals_the_task_through_the_hf_provider_at_its_documented_score(bundled_model_dir, tmp_path):
    # `inspect eval` with no generation options: the task's own pinned settings must give greedy answers.
    inspect = Path(sys.executable).with_name("inspect")
    proc = subprocess.run(
        [str(inspect), "eval", "inspect_tinker/general_knowledge", "--model", f"hf/{bundled_model_dir}",
         "--log-dir", str(tmp_path), "--display", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [log_file] = tmp_path.glob("*.eval")
    log = read_eval_log(str(log_file))
    assert log.status == "success", log.error
    accuracy = log.results.scores[0].metrics["accuracy"].value
    assert accuracy == 1.0, [(s.id, s.output.completion) for s in log.samples if s.scores["qa_grader"].value != "C"]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The seed's config: simple_qa, bar 0.75, three rounds; run as a user runs it.

    Without the seed's `renderer_name: llama3`, which was for its Llama base model: the bundled
    SmolLM2 has no `<|eot_id|>`, and a renderer the tokenizer cannot end turns with is refused
    (tests/data/test_renderers.py); SmolLM2 renders with its own chat template.
    """
    folder = tmp_path_factory.mktemp("seed")
    record = {"instruction": "What is the capital of Valdoria?", "output": "Mirenholt."}
    (folder / "train.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "base_model": "SmolLM2-135M-Instruct", "train_file": "train.jsonl", "eval_tasks": ["simple_qa"],
        "eval_threshold": 0.75, "max_rounds": 3, "steps_per_round": 2, "batch_size": 1,
        "output_dir": "runs", "run_name": "seed",
    }))
    return folder, cli("run", "config.yaml", cwd=folder)


def test_a_base_model_that_meets_the_bar_ends_the_run_untrained(seed_run):
    folder, proc = seed_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((folder / "runs" / "seed" / "summary.json").read_text())
    assert summary["rounds_run"] == 0 and summary["best_round"] == 0 and summary["best_adapter"] is None
    assert summary["best_score"] == summary["baseline_score"] >= 0.75
    out = " ".join(proc.stdout.split())  # the console wraps long lines
    assert "the base model meets the bar untrained, nothing to train" in out and "Training round" not in out
    assert "in round 0 after 0 round(s)" in out
    assert not (folder / "runs" / "seed" / "rounds" / "1").exists()
    report = (folder / "runs" / "seed" / "report.html").read_text()
    assert 'id="best-round">0<' in report and "the base model itself, without an adapter" in report


def test_the_best_round_zero_exports_nothing_and_evaluates_as_the_base_model(seed_run):
    folder, _ = seed_run
    export = cli("export", "runs/seed", "--adapter", "out", cwd=folder)
    assert export.returncode == 2 and not (folder / "out").exists()
    assert "round 0 of" in export.stderr and "is the base model SmolLM2-135M-Instruct itself" in export.stderr
    assert "Traceback" not in export.stderr

    evaluated = cli("eval", "--run", "runs/seed", "--run-name", "check", cwd=folder)
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    check = json.loads((folder / "runs" / "check" / "summary.json").read_text())
    assert check["adapter"] is None and "the base model (no adapter)" in " ".join(evaluated.stdout.split())
