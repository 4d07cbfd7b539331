"""`inspect view` lists every log of a log dir, as a person sees it: served on 127.0.0.1 and opened
in headless Chromium (the `inspect_view` fixture, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from inspect_ai.log import read_eval_log
from inspect_commands import inspect_cli

REPO = Path(__file__).resolve().parents[1]

# A task of someone else's, scored by Inspect's `includes`: mockllm answers "Default output from
# mockllm/model", which holds "mock" and not "Valdoria", so its accuracy is 1/2 = 0.5, unlike the
# demo task's 0.0 (its questions are about Valdoria).
ECHO_TASK = """\
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes

@task
def echo_task():
    return Task(dataset=[Sample(id='hit', input='Say it.', target='mock'),
                         Sample(id='miss', input='Say it.', target='Valdoria')], scorer=includes())
"""


def test_inspect_view_lists_each_log_of_the_dir_newest_first_with_its_task_status_model_and_score(
    tmp_path, offline_tiktoken, inspect_view
):
    logs = tmp_path / "logs"
    (tmp_path / "echo_task.py").write_text(ECHO_TASK)
    # One after the other, so the second log is the newer: the viewer lists the newest first.
    for task_file, cwd in (("tasks/demo_qa.py", REPO), ("echo_task.py", tmp_path)):
        done = inspect_cli(
            "eval", task_file, "--model", "mockllm/model", "--limit", "2", "--log-dir", str(logs),
            cwd=cwd, env=offline_tiktoken,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    written = {path.name: read_eval_log(str(path), header_only=True).eval.task for path in logs.glob("*.eval")}
    assert sorted(written.values()) == ["demo_qa", "echo_task"]

    listed = inspect_view(logs)

    assert [(log.task, log.status, log.model, log.score) for log in listed] == [
        ("echo_task", "success", "mockllm/model", "0.5"),
        ("demo_qa", "success", "mockllm/model", "0.0"),
    ]
    assert {log.file: log.task for log in listed} == written  # each row is the log file written
