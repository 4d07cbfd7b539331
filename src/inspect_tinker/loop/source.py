"""`inspect eval inspect_tinker/train_until_threshold -T config=...`: the loop as an Inspect task source.

The task source drives the same stages as `inspect-tinker run` and the Python API
(session.py's `run_stages` through stages.py's StageSource), so there is one loop. A log dir
and a run folder are two things: the stages' Inspect logs go where Inspect puts them (its log
dir: `--log-dir`, INSPECT_LOG_DIR, or `./logs`), each tagged with its run, and the run folder
(state, checkpoints, events) is `output_dir/run_name` as for `inspect-tinker run`, recording
where its logs are. One convention is kept from before: an explicit `--log-dir runs/demo/logs`
places the run in its parent, `runs/demo`, unless `-T output_dir=`/`-T run_name=` place it.
This module stays light, because the entry point imports it: the loop itself (torch and all)
is imported when the task source is built.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from inspect_ai import TaskSource, task_source
from inspect_ai._util.error import PrerequisiteError, SilentException

from inspect_tinker.loop.stages import StageSource

NAME = "inspect_tinker/train_until_threshold"
_EXAMPLE = f"inspect eval {NAME} -T config=run.yaml"


@task_source(name="train_until_threshold")
def train_until_threshold(config: str | None = None, **overrides) -> TaskSource:
    """Train a LoRA adapter in rounds until the Inspect tasks of `config` pass its bar.

    `-T config=run.yaml` names the configuration; `-T key=value` overrides one key of it, as
    `inspect-tinker run --set key=value` does. The stages' logs go to Inspect's log dir; the
    run folder is `output_dir/run_name` (a timestamp unless named). `inspect eval` exits 0
    when the run ran, whether the bar was met or not, and 1 on bad input (the README's table);
    `inspect-tinker run` gives the exit code a CI gate reads.
    """
    from inspect_tinker.errors import UsageError

    command = _inspect_eval_command()
    try:
        if config is None:
            raise UsageError(f"no configuration given: pass -T config=<your config file>, e.g. {_EXAMPLE}")
        return _build(Path(config), overrides, command)
    except UsageError as err:
        message = f"{NAME}: {err}"
        if command is None:  # inspect_ai.eval in Python: Inspect's own one-message error, no exit
            raise PrerequisiteError(message) from None
        # Printed here, not left to Inspect's PrerequisiteError: under --display none its
        # handler prints nothing. SilentException makes Inspect exit 1 without a word more
        # (SystemExit(2) here is a BaseException inside Inspect's task group: a traceback).
        print(message, file=sys.stderr, flush=True)
        raise SilentException() from None


def _build(config: Path, overrides: dict, command: click.Context | None) -> TaskSource:
    """Load the configuration, open the run and start its stages."""
    from inspect_tinker.config import load_config
    from inspect_tinker.loop.session import open_run, run_stages
    from inspect_tinker.tracking.console import ConsoleSink
    from rich.console import Console

    log_dir, placement = _log_dir_and_placement(command, overrides)
    # Inspect has parsed each -T value as YAML already, as `--set` does.
    given = {key: f"-T {key}" for key in overrides} | {key: "--log-dir" for key in placement}
    loaded = load_config(config, {**overrides, **placement}, given=given)
    # On stderr: Inspect's own display has stdout.
    source = StageSource(run_stages(open_run(loaded, [ConsoleSink(Console(stderr=True))], log_dir=log_dir)))
    source.start()
    return source


def _inspect_eval_command() -> click.Context | None:
    """The `inspect eval` command line being run, None outside one (`inspect_ai.eval` in Python)."""
    context = click.get_current_context(silent=True)
    if context is None or context.command.name != "eval" or "log_dir" not in context.params:
        return None
    return context


def _log_dir_and_placement(command: click.Context | None, overrides: dict) -> tuple[Path | None, dict]:
    """Inspect's log dir (where the run's logs go), and the `output_dir`/`run_name` it implies.

    Inspect resolves the log dir only after it has built the task source, so it is read from the
    `inspect eval` command line (click's context: the option, INSPECT_LOG_DIR or the default).
    Only an explicit log dir `<output_dir>/<run_name>/logs` places the run, and only when no
    `-T output_dir`/`-T run_name` does: those name the run folder, and the log dir stays the log dir.
    Outside `inspect eval` there is no log dir to read: the configuration places the run and
    its logs go to its own `logs/` (use `inspect_tinker.run(config)` there).
    """
    if command is None:
        return None, {}
    log_dir = Path(command.params["log_dir"]).absolute()
    explicit = command.get_parameter_source("log_dir") != click.core.ParameterSource.DEFAULT
    # `--log-dir logs` names no run: its parent is the project folder, not a run folder.
    names_run = explicit and log_dir.name == "logs" and log_dir.parent != Path.cwd()
    if not names_run or {"output_dir", "run_name"} & set(overrides):
        return log_dir, {}
    # The run folder's own logs/: as a run of `inspect-tinker run` has it.
    return None, {"output_dir": str(log_dir.parent.parent), "run_name": log_dir.parent.name}
