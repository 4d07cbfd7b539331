"""Inspect finds what the package registers through its entry point, and loading it is cheap.

Every `inspect eval`, whatever it runs, imports `inspect_tinker._registry` (Inspect loads all
installed entry points to find hooks), so it must not import torch, transformers, peft or
tinker. Each check runs in a fresh interpreter or a real `inspect` subprocess: an import in
this test process would hide what a first import costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log
from inspect_commands import inspect_cli

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "tinker")


def loaded_after(statement: str) -> set[str]:
    """The top-level packages loaded by running `statement` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def only_log(folder: Path):
    [path] = sorted(folder.glob("*.eval"))
    return read_eval_log(str(path))


def test_importing_the_registry_loads_no_torch_transformers_peft_or_tinker():
    loaded = loaded_after("import inspect_tinker._registry")
    assert "inspect_ai" in loaded  # it did register with Inspect
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_importing_the_package_root_loads_no_pydantic_inspect_or_torch():
    loaded = loaded_after("import inspect_tinker")
    assert not loaded & {"pydantic", "inspect_ai", "yaml", "numpy", *HEAVY}


def test_inspect_eval_runs_the_registered_task_by_name_and_grades_with_qa_grader(tmp_path, offline_tiktoken):
    done = inspect_cli(
        "eval", "inspect_tinker/general_knowledge", "--model", "mockllm/model", "--limit", "2", "--log-dir", "logs",
        cwd=tmp_path, env=offline_tiktoken,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = only_log(tmp_path / "logs")
    assert log.status == "success" and log.eval.task_registry_name == "inspect_tinker/general_knowledge"
    assert [s.name for s in log.eval.scorers] == ["qa_grader"]
    # mockllm answers "Default output from mockllm/model": no capital or sum in it.
    assert [s.scores["qa_grader"].value for s in log.samples] == ["I", "I"]


@pytest.mark.parametrize(("task_file", "task_name"), [("tasks/demo_qa.py", "demo_qa"), ("tasks/general_knowledge.py", "general_knowledge")])
def test_the_task_files_run_by_relative_path_with_any_inspect_model(task_file, task_name, tmp_path, offline_tiktoken):
    done = inspect_cli(
        "eval", task_file, "--model", "mockllm/model", "--limit", "2", "--log-dir", str(tmp_path),
        cwd=REPO, env=offline_tiktoken,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = only_log(tmp_path)
    assert log.status == "success" and log.eval.task == task_name and log.eval.task_file == task_file
    assert [s.name for s in log.eval.scorers] == ["qa_grader"]
    assert len(log.samples) == 2 and all(s.scores["qa_grader"].value == "I" for s in log.samples)


def test_inspect_rescores_any_log_with_qa_grader_by_its_registry_name(tmp_path, offline_tiktoken):
    # A task of someone else's, scored by Inspect's `includes` (a substring, case folded).
    (tmp_path / "their_task.py").write_text(
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import Sample\n"
        "from inspect_ai.scorer import includes\n\n"
        "@task\n"
        "def their_task():\n"
        "    return Task(dataset=[Sample(id='words', input='Say it.', target='DEFAULT output'),\n"
        "                         Sample(id='part', input='Say it.', target='mock')], scorer=includes())\n"
    )
    done = inspect_cli("eval", "their_task.py", "--model", "mockllm/model", "--log-dir", "logs", cwd=tmp_path, env=offline_tiktoken)
    assert done.returncode == 0, done.stdout + done.stderr
    [log_path] = sorted((tmp_path / "logs").glob("*.eval"))
    done = inspect_cli(
        "score", str(log_path), "--scorer", "inspect_tinker/qa_grader", "--action", "overwrite",
        "--output-file", "rescored.eval", cwd=tmp_path, env=offline_tiktoken,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    samples = {s.id: s for s in read_eval_log(str(tmp_path / "rescored.eval")).samples}
    # The response is "Default output from mockllm/model": both targets are in it as text, but
    # only "default output" is in it as whole words.
    assert samples["words"].scores["qa_grader"].value == "C"
    assert samples["part"].scores["qa_grader"].value == "I"


def test_the_loops_task_source_reports_bad_input_in_one_message_before_any_run_folder(tmp_path, write_run_config):
    config = write_run_config()
    missing = inspect_cli("eval", "inspect_tinker/train_until_threshold", "-T", "config=nowhere.yaml",
                          "--log-dir", "runs/x/logs", cwd=tmp_path, env={})
    said = missing.stdout + missing.stderr
    assert missing.returncode == 1 and "config file nowhere.yaml does not exist" in missing.stderr and "Traceback" not in said
    wrong_key = inspect_cli("eval", "inspect_tinker/train_until_threshold", "-T", f"config={config}",
                            "-T", "max_round=2", "--log-dir", "runs/x/logs", cwd=tmp_path, env={})
    assert wrong_key.returncode == 1 and "max_rounds" in wrong_key.stderr, wrong_key.stderr  # the nearest valid key
    assert not (tmp_path / "runs").exists()
