"""`inspect eval inspect_tinker/train_until_threshold -T config=...`: the loop as an Inspect task source.

The task source drives the same stages as `inspect-tinker run` and the Python API
(session.py's `run_stages` through stages.py's StageSource), so there is one loop. Under
`inspect eval`, the run folder is the parent of Inspect's log dir: `--log-dir runs/demo/logs`
runs in `runs/demo`, so the user names the run once, where Inspect users name their logs.
This module stays light, because the entry point imports it: the loop itself (torch and all)
is imported when the task source is built.
"""

from __future__ import annotations

from pathlib import Path

import click
from inspect_ai import TaskSource, task_source
from inspect_ai._util.error import PrerequisiteError

from inspect_tinker.loop.stages import StageSource


@task_source(name="train_until_threshold")
def train_until_threshold(config: str, **overrides) -> TaskSource:
    """Train a LoRA adapter in rounds until the Inspect tasks of `config` pass its bar.

    `-T config=run.yaml` names the configuration; `-T key=value` overrides one key of it, as
    `inspect-tinker run --set key=value` does. Give the run folder's logs as the log dir
    (`--log-dir runs/<name>/logs`): the run folder is its parent. `inspect eval` exits 0 whether
    the bar was met or not; `inspect-tinker run` gives the exit code a CI gate reads.
    """
    from inspect_tinker.config import load_config
    from inspect_tinker.errors import UsageError
    from inspect_tinker.loop.session import open_run, run_stages
    from inspect_tinker.tracking.console import ConsoleSink
    from rich.console import Console

    try:
        placement = _placement_from_log_dir()
        # Inspect has parsed each -T value as YAML already, as `--set` does.
        given = {key: f"-T {key}" for key in overrides} | {key: "--log-dir" for key in placement}
        loaded = load_config(Path(config), {**overrides, **placement}, given=given)
        # On stderr: Inspect's own display has stdout.
        source = StageSource(run_stages(open_run(loaded, [ConsoleSink(Console(stderr=True))])))
        source.start()
        return source
    except UsageError as err:  # one message, as Inspect shows its own, not a traceback
        raise PrerequisiteError(f"inspect_tinker/train_until_threshold: {err}") from None


def _placement_from_log_dir() -> dict:
    """`output_dir` and `run_name` of the run folder that `inspect eval --log-dir <run folder>/logs` names.

    Inspect resolves the log dir only after it has built the task source, so it is read from
    the `inspect eval` command line being run (click's context: the option or INSPECT_LOG_DIR).
    Outside `inspect eval` (`inspect_ai.eval` in Python) there is none; the configuration
    places the run (use `inspect_tinker.run(config)` there).
    """
    from inspect_tinker.errors import UsageError

    context = click.get_current_context(silent=True)
    if context is None or context.command.name != "eval" or "log_dir" not in context.params:
        return {}
    log_dir = Path(context.params["log_dir"]).absolute()
    explicit = context.get_parameter_source("log_dir") != click.core.ParameterSource.DEFAULT
    if not explicit or log_dir.name != "logs":
        raise UsageError(
            f"the log dir is {context.params['log_dir']}; give the run folder's logs folder instead, e.g. "
            "--log-dir runs/demo/logs: the run folder (state, checkpoints, events) is its parent."
        )
    return {"output_dir": str(log_dir.parent.parent), "run_name": log_dir.parent.name}
