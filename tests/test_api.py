"""The Python API at the package root (`inspect_tinker.__all__`), used as its docstring shows:
each name does its job, on the tiny model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from inspect_ai._util.registry import registry_info
from inspect_ai.model import ModelOutput
from inspect_ai.scorer import Target
from inspect_ai.solver import TaskState

import inspect_tinker


def test_every_name_of_the_package_root_runs_reads_back_or_grades(write_run_config, tmp_path):
    api = inspect_tinker
    # A name added to __all__ gets its use below.
    assert set(api.__all__) == {"Config", "UsageError", "list_runs", "load_config", "qa_grader", "run", "run_eval",
                                "sync_outbox", "write_report"}
    path = write_run_config(max_rounds=1, output_dir=str(tmp_path / "runs"))
    with pytest.raises(api.UsageError, match="unknown key 'max_roundz'; did you mean 'max_rounds'"):
        api.load_config(path, {"max_roundz": 2})
    config = api.load_config(path)
    assert isinstance(config, api.Config) and config.max_rounds == 1

    summary = api.run(config)
    run_dir = Path(summary["run_dir"])
    assert summary["rounds_run"] == 1 and (run_dir / "summary.json").is_file()
    [row] = api.list_runs(tmp_path / "runs")
    assert (row.run_dir, row.rounds, row.best_score) == (str(run_dir), 1, summary["best_score"])
    assert api.write_report(run_dir) == run_dir / "report.html" and (run_dir / "report.html").is_file()
    assert api.sync_outbox(run_dir) is None  # no remote sinks configured, nothing to deliver

    adapter = run_dir / "rounds" / "1" / "adapter"
    checked = api.run_eval(config.model_copy(update={"run_name": "checked"}), adapter=adapter)
    assert checked["adapter"] == str(adapter) and Path(checked["run_dir"]).name == "checked"

    grader = api.qa_grader()
    assert registry_info(grader).name == "inspect_tinker/qa_grader"
    state = TaskState(model="m", sample_id=1, epoch=1, input="Capital of Valdoria?", messages=[],
                      output=ModelOutput.from_content(model="m", content="It is Mirenholt."))
    assert asyncio.run(grader(state, Target("mirenholt"))).value == "C"
