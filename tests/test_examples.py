"""Every example under examples/ validates as it is, and the Python API example really runs.

The configs are loaded and their tasks built exactly as `inspect-tinker run` does before any
model loads (every key, file, task file and registry name checked); only the training is
left out, except for the Python API script, which trains the bundled model for a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.loop.eval_tasks import build_tasks

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
TINKER_EXAMPLE = EXAMPLES / "tinker_eval_loop" / "config.json"
# The original tinker-eval-loop demo config (demo_config.json), key for key.
ORIGINAL_KEYS = {
    "base_model": "meta-llama/Llama-3.1-8B-Instruct", "eval_tasks": ["simple_qa"], "renderer_name": "llama3",
    "learning_rate": 0.0003, "eval_threshold": 0.75, "max_rounds": 3, "lr_decay": 0.6, "evalops_enabled": False,
    "evalops_test_suite_id": "", "steps_per_round": 5, "batch_size": 4, "max_seq_length": 512,
}


@pytest.fixture
def no_tinker_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no stored `tinker auth login` credentials
    for name in ("TINKER_API_KEY", "TINKER_CREDENTIAL_CMD", "TINKER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_every_example_folder_has_a_readme_or_a_header():
    for entry in sorted(EXAMPLES.iterdir()):
        documented = (entry / "README.md").is_file() if entry.is_dir() else entry.read_text().startswith('"""')
        assert documented, f"{entry.relative_to(REPO)}: add a README.md (or a docstring)"


def test_the_original_tinker_eval_loop_config_validates_in_its_own_keys(no_tinker_credentials, monkeypatch):
    written = json.loads(TINKER_EXAMPLE.read_text())
    assert {k: written[k] for k in ORIGINAL_KEYS} == ORIGINAL_KEYS
    monkeypatch.setenv("TINKER_API_KEY", "tml-a-well-formed-key-that-is-never-sent")
    config = load_config(TINKER_EXAMPLE)
    assert config.backend == "tinker" and config.renderer_name == "llama3" and config.lr_decay == 0.6
    [task] = config.eval_tasks
    assert (task.task, task.display_name) == ("inspect_tinker/general_knowledge", "simple_qa")
    assert [t.name for t in build_tasks(config)] == ["simple_qa"]  # the guard is that task already


def test_without_a_tinker_api_key_the_tinker_example_stops_with_one_message(no_tinker_credentials, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "inspect_tinker", "run", "--config", str(TINKER_EXAMPLE), "--output-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: backend: tinker needs an API key: set the environment variable TINKER_API_KEY=tml-... "
        "(create a key in the Tinker console)."
    ]
    assert not (tmp_path / "runs").exists()  # stopped before a run folder was made


def test_the_gpu_example_validates_with_its_gpu_settings():
    config = load_config(EXAMPLES / "gpu" / "config.yaml")
    assert (config.device, config.precision, config.batch_size, config.micro_batch_size) == ("cuda", "bf16", 32, 16)
    assert [t.name for t in build_tasks(config)] == ["valdoria_facts", "valdoria_more_facts", "valdoria_confirm", "general_knowledge"]


def test_the_reuse_example_builds_a_task_file_and_an_installed_task():
    config = load_config(EXAMPLES / "reuse_inspect_task" / "config.yaml")
    facts, knowledge = build_tasks(config)
    assert (facts.name, facts.role, len(facts.task.dataset)) == ("valdoria_facts", "gate", 12)  # tasks/demo_qa.py, eval questions
    assert facts.scorer == "qa_grader"  # the task file's own scorer
    assert (knowledge.name, knowledge.role, len(knowledge.task.dataset)) == ("general_knowledge", "confirm", 20)


def test_the_demo_command_runs_the_example_demo(tiny_model_dir, tmp_path):
    # `inspect-tinker demo`, on the tiny model for one short round instead of the bundled one for
    # four: the run it makes is this folder's config and data (one copy: the package's demo is examples/demo).
    short = ["max_rounds=1", "steps_per_round=2", "baseline_eval=false", "regression_guard=false"]
    code = main(["demo", "--output-dir", str(tmp_path), "--run-name", "demo", "--base-model", str(tiny_model_dir),
                 *(f"--set={s}" for s in short)])
    run_dir = tmp_path / "demo"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert code == summary["exit_code"] and summary["rounds_run"] == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train_file"] == str(EXAMPLES / "demo" / "train.jsonl")
    assert [t["name"] for t in config["eval_tasks"]] == ["valdoria_facts", "valdoria_more_facts", "valdoria_confirm"]
    tasks = {read_eval_log(str(p), header_only=True).eval.task for p in (run_dir / "logs").glob("*.eval")}
    assert tasks == {"train_round_1", "valdoria_facts", "valdoria_more_facts", "valdoria_confirm"}


@pytest.mark.integration
def test_the_python_api_example_trains_the_bundled_model_and_checks_its_best_adapter(tmp_path):
    budget = ["max_rounds=1", "steps_per_round=4", "baseline_eval=false", "regression_guard=false"]
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "python_api.py"), "--output-dir", str(tmp_path), *(f"--set={s}" for s in budget)],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
    )
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert len(folders) == 2 and folders[1] == f"{folders[0]}-best", (folders, done.stderr[-4000:])
    run_dir, check_dir = (tmp_path / name for name in folders)  # the run, then run_eval's folder named after it
    assert (check_dir / "summary.json").is_file(), done.stderr[-4000:]  # run_eval finished
    summary = json.loads((run_dir / "summary.json").read_text())
    assert done.returncode == summary["exit_code"], done.stderr
    assert summary["rounds_run"] == 1 and summary["best_round"] == 1
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    losses = [e["loss"] for e in events if e["event"] == "step"]
    assert len(losses) == 4 and losses[-1] < losses[0]  # it trained: at lr 1e-3 the first steps halve the loss (test_demo.py)
    check = json.loads((check_dir / "summary.json").read_text())
    assert check["adapter"] == summary["best_adapter"]
    assert f"the best adapter evaluated again: score {check['score']:.3f}" in done.stdout


@pytest.mark.parametrize("command", ["inspect-tinker run", "inspect eval"])
def test_the_original_demo_config_runs_in_its_own_keys_through_both_commands(command, tiny_model_dir, tmp_path):
    # Only where it runs changes (this machine, the tiny model, its own chat template, one short
    # round); the seed's keys stay as written: eval_tasks ["simple_qa"], lr_decay, eval_threshold ...
    where = {"backend": "local", "base_model": str(tiny_model_dir), "renderer_name": "null", "max_rounds": 1,
             "steps_per_round": 2}
    if command == "inspect-tinker run":
        args = [sys.executable, "-m", "inspect_tinker", "run", str(TINKER_EXAMPLE), "--output-dir", "runs",
                "--run-name", "seed", *[a for k, v in where.items() for a in ("--set", f"{k}={v}")]]
    else:
        args = [str(Path(sys.executable).with_name("inspect")), "eval", "inspect_tinker/train_until_threshold",
                "-T", f"config={TINKER_EXAMPLE}", *[a for k, v in where.items() for a in ("-T", f"{k}={v}")],
                "--log-dir", "runs/seed/logs"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=tmp_path,
                          env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false"})
    run_dir = tmp_path / "runs" / "seed"
    assert (run_dir / "summary.json").is_file(), done.stdout + done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert done.returncode == (summary["exit_code"] if command == "inspect-tinker run" else 0)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["lr_decay"], config["eval_threshold"], config["batch_size"]) == (0.6, 0.75, 4)
    tasks = {read_eval_log(str(p), header_only=True).eval.task for p in (run_dir / "logs").glob("*.eval")}
    assert tasks == {"simple_qa", "train_round_1"}


@pytest.mark.parametrize("command", ["inspect-tinker run", "inspect eval"])
def test_the_rl_example_runs_from_the_repo_root_through_both_commands(command, tiny_model_dir, tmp_path):
    # Typed as examples/rl/README.md writes them, from the repository root, with the config path
    # relative to it; only the model (the tiny one) and the budget (one step of 2 prompts x 2) change.
    # tests/integration/test_rl_example.py runs the example itself on the bundled model.
    where = {"base_model": str(tiny_model_dir), "max_rounds": 1, "steps_per_round": 1, "rl.prompts_per_step": 2,
             "rl.group_size": 2, "run_name": "rl"}
    if command == "inspect-tinker run":
        args = [sys.executable, "-m", "inspect_tinker", "run", "--config", "examples/rl/config.yaml",
                "--output-dir", str(tmp_path), *[a for k, v in where.items() for a in ("--set", f"{k}={v}")]]
    else:
        args = [str(Path(sys.executable).with_name("inspect")), "eval", "inspect_tinker/train_until_threshold",
                "-T", "config=examples/rl/config.yaml", "-T", f"output_dir={tmp_path}",
                *[a for k, v in where.items() for a in ("-T", f"{k}={v}")], "--log-dir", str(tmp_path / "logs")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=REPO,
                          env={**os.environ, "INSPECT_EVAL_CTL_SERVER": "false"})
    run_dir = tmp_path / "rl"
    assert (run_dir / "summary.json").is_file(), done.stdout + done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert done.returncode == (summary["exit_code"] if command == "inspect-tinker run" else 0), done.stderr
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    log_dir = run_dir / "logs" if command == "inspect-tinker run" else tmp_path / "logs"
    tasks = {read_eval_log(str(p), header_only=True).eval.task for p in log_dir.glob("*.eval")}
    assert tasks == {"terse_eval", "rollout_round_1", "train_round_1"}
    steps = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["groups"] for e in steps if e["event"] == "rl_step"] == [2]  # one step of 2 prompts, rewarded
