"""What a user gets from `pip install .`: the core install, no extras, torch nowhere.

The fresh-install tests build a virtualenv once per test session (pip's own cache makes a
second session faster) and install the project from this working tree, not editable, so
they see what a wheel ships. They take minutes: `pytest -m "not fresh_install"` skips them;
`make test` runs them. Commands run from the repository root with relative paths, as a
user in a clone types them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from inspect_ai.log import read_eval_log

REPO = Path(__file__).resolve().parents[1]


def test_every_package_under_src_ships_in_the_wheel():
    # pyproject.toml lists the packages (it maps inspect_tinker.demo to examples/demo), so a new
    # subpackage must be added there: without it the wheel would lack it and imports would fail.
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("__init__.py")
    } | {"inspect_tinker.demo"}
    assert on_disk == listed, f"missing from pyproject.toml: {sorted(on_disk - listed)}; listed but gone: {sorted(listed - on_disk)}"


@pytest.fixture(scope="session")
def fresh_venv(tmp_path_factory) -> Path:
    """A virtualenv holding `pip install .` of this working tree and nothing else; its bin folder."""
    place = tmp_path_factory.mktemp("fresh-install")
    # Built from a copy without build outputs: pip builds in the source tree, and a build/ folder
    # left by an earlier build would put modules deleted since into the wheel.
    source = place / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "runs", "logs", ".hypothesis"))
    venv = place / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
        capture_output=True, text=True, timeout=3600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def run_in(bin_dir: Path, *args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """Run `args[0]` of the virtualenv from the repository root; `env` sets (or, with None, removes) variables."""
    merged = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "INSPECT_EVAL_CTL_SERVER": "false",
              **(env or {})}
    merged = {k: v for k, v in merged.items() if v is not None and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=900, cwd=REPO, env=merged)


@pytest.mark.fresh_install
def test_the_core_install_has_no_torch_and_its_registry_imports_without_one(fresh_venv):
    code = (
        "import importlib.util, json, sys\n"
        "import inspect_tinker._registry\n"
        "print(json.dumps({'installed': [m for m in ('torch', 'peft', 'accelerate') if importlib.util.find_spec(m)],"
        " 'loaded': sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'peft', 'tinker'}),"
        " 'from': inspect_tinker._registry.__file__}))"
    )
    done = run_in(fresh_venv, "python", "-c", code)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["installed"] == [] and found["loaded"] == []
    assert "site-packages" in found["from"]  # the installed copy, not a checkout


@pytest.mark.fresh_install
def test_inspect_eval_runs_the_demo_task_file_and_grades_with_qa_grader(fresh_venv, offline_tiktoken, tmp_path):
    logs = tmp_path / "logs"
    done = run_in(
        fresh_venv, "inspect", "eval", "tasks/demo_qa.py", "--model", "mockllm/model", "--limit", "2",
        "--log-dir", str(logs), env=offline_tiktoken,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [path] = logs.glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success" and log.eval.task == "demo_qa"
    assert [s.name for s in log.eval.scorers] == ["qa_grader"]
    assert [s.id for s in log.samples] == ["capital", "currency"]  # the demo's questions, found through the installed package
    assert all(s.scores["qa_grader"].value == "I" for s in log.samples)  # "Default output from mockllm/model"


@pytest.mark.fresh_install
def test_a_command_that_needs_the_local_extra_says_which_to_install(fresh_venv, tmp_path):
    done = run_in(fresh_venv, "inspect-tinker", "demo", "--output-dir", str(tmp_path / "runs"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pip install 'inspect-tinker[local]'" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.fresh_install
def test_a_tinker_run_gets_as_far_as_the_api_key_without_torch(fresh_venv, tmp_path):
    # Everything before the service is reached (config, tasks, the engine's checks) is torch-free.
    env = {"HOME": str(tmp_path / "home"), "TINKER_API_KEY": None, "TINKER_CREDENTIAL_CMD": None}
    done = run_in(
        fresh_venv, "inspect-tinker", "run", "--config", "examples/tinker_eval_loop/config.json",
        "--output-dir", str(tmp_path / "runs"), env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "TINKER_API_KEY" in done.stderr and "Traceback" not in done.stderr
