"""The `inspect-tinker` command, written with click.

Exit codes: errors.ExitCode, stated once there (`inspect-tinker sync`: 0 all delivered,
1 some still undelivered).

Each command imports what it needs (the loop, Inspect, torch, transformers) inside its own
body: the command is the boundary, so `inspect-tinker --help`, shell completion and
`inspect-tinker runs` start without loading torch.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console

from inspect_tinker.errors import BUG_REPORT, EXIT_CODES, ExitCode, UsageError
from inspect_tinker.loop.graceful_stop import StoppedAtOnce
# Only constants, and the module imports only httpx: --help stays light.
from inspect_tinker.provider.tinker_server.server import DEFAULT_MAX_LORA_ADAPTERS, DEFAULT_PORT

PATH = click.Path(path_type=Path)  # no existence check here: our own messages say what is missing and where

RUN_EXIT_CODES = "\b\nExit codes:\n" + "\n".join(f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODES.items())


class _Command(click.Command):
    """A command whose failures end in one message and an exit code: a UsageError of ours
    (bad configuration or data) exits 2, Ctrl-C 130 (SIGTERM 143), anything else 3; no
    traceback unless --verbose. click's own usage errors pass through to `main`."""

    def invoke(self, ctx: click.Context) -> int:
        verbose = ctx.params.get("verbose", False)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            if verbose:
                traceback.print_exc()
            return ExitCode.USAGE
        except KeyboardInterrupt as err:
            print("\ninterrupted", file=sys.stderr)
            return err.exit_code if isinstance(err, StoppedAtOnce) else ExitCode.INTERRUPTED
        except Exception as err:
            if verbose:
                traceback.print_exc()
            print(f"error: {err.__class__.__name__}: {err}\n({BUG_REPORT})", file=sys.stderr)
            return ExitCode.BUG


class _Group(click.Group):
    command_class = _Command
    group_class = type  # `data` is a _Group too, so `data check` is a _Command


def _options(*decorators):
    """Several click options as one decorator: the options many commands share."""

    def apply(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


_verbose = click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and library logs.")
_config_overrides = _options(
    click.option("--base-model", metavar="MODEL", help="Override base_model (bundled name, model folder, or hub id)."),
    click.option("--backend", type=click.Choice(["local", "tinker"]),
                 help="Override backend (tinker: the managed Tinker service)."),
    click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                 help="Override any config key (repeatable), e.g. --set max_rounds=2 --set generation.max_tokens=16."),
)
_placement = _options(
    click.option("--output-dir", type=PATH, metavar="DIR", help="Override output_dir (where run folders go)."),
    click.option("--run-name", metavar="NAME", help="Override run_name (the run folder's name)."),
)


def _one_of(required: bool = False, **given) -> None:
    """Refuse options that exclude each other (click has no such groups); `given` maps each
    option as written (`--merged`) to its value, None or False when not given."""
    named = [option for option, value in given.items() if value is not None and value is not False]  # --round 0 counts
    if len(named) > 1:
        raise click.UsageError(f"{' and '.join(named)} exclude each other: give one of them.")
    if required and not named:
        raise click.UsageError(f"give one of {' or '.join(given)}.")


def _overrides(options: dict) -> tuple[dict, dict[str, str]]:
    """The config keys set on the command line, and for each the option that set it (for messages)."""
    from inspect_tinker.config import parse_override

    overrides, given = {}, {}
    for text in options["settings"]:
        key, overrides[key] = parse_override(text)
        given[key] = f"--set {key}"  # without the value: it may be a URL with a password
    keys = {name: name for name in ("base_model", "backend", "output_dir", "run_name")}
    keys.update({name: f"tune.{name}" for name in ("storage", "study_name")})
    for name, key in keys.items():
        if options.get(name) is not None:
            overrides[key] = str(options[name])
            given[key] = f"--{name.replace('_', '-')}"
    return overrides, given


def _quiet_libraries(verbose: bool) -> None:
    # Library progress bars and warnings would drown the run's own output.
    if verbose:
        return
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog="""
\b
Examples:
  inspect-tinker demo
  inspect-tinker run my-run.yaml
  inspect-tinker runs

\b
Exit codes: 0 bar met; 1 bar not met; 2 bad usage, configuration or data;
3 unexpected error; 130 Ctrl-C; 143 SIGTERM. `inspect-tinker COMMAND --help`
says more about each command.

\b
Shell completion (bash; zsh and fish likewise):
  eval "$(_INSPECT_TINKER_COMPLETE=bash_source inspect-tinker)"
""")
def cli() -> None:
    """Evaluation-driven LoRA fine-tuning: train in rounds until your Inspect AI evaluation
    passes the bar."""


def _check_backend(config) -> None:
    """Stop with one message when the backend of `config` cannot start (the local extra or the base
    model missing, no API key), before transformers is imported (`_quiet_libraries`): without torch
    it says so at import, a line before the message that says what to install. The run checks
    again where it is set up (loop/session.py), for the Python API and `inspect eval`."""
    from inspect_tinker.loop.settings import backend_settings
    from inspect_tinker.provider import check_backend_requirements

    check_backend_requirements(backend_settings(config))


def _train(config, resume_dir: Path | None, force: bool, verbose: bool, allow_changed_inputs: bool = False) -> int:
    """Run (or resume, from `resume_dir`) the loop on `config`; its exit code. `force` accepts a changed
    configuration, `allow_changed_inputs` changed contents of the files the run read."""
    from inspect_tinker.config import changed_keys
    from inspect_tinker.loop.graceful_stop import RunInterrupted
    from inspect_tinker.loop.session import run
    from inspect_tinker.tracking import RunFolder
    from inspect_tinker.tracking.console import ConsoleSink

    _check_backend(config)
    changed = []
    if resume_dir is not None:
        changed = changed_keys(RunFolder.open(resume_dir).read_config(), config.model_dump(mode="json"))
        if changed and not force:
            raise UsageError(
                f"the configuration differs from the one {resume_dir} was started with, in: {', '.join(changed)}. "
                "Resume with the same configuration, or pass --force to accept the change."
            )
    _quiet_libraries(verbose)
    try:
        summary = run(config, sinks=[ConsoleSink(Console())], resume=resume_dir, changed_keys=changed,
                      allow_changed_inputs=allow_changed_inputs)
    except RunInterrupted as err:
        return err.exit_code
    return summary["exit_code"]


def _recorded_config(run_dir: Path, overrides: dict, given: dict[str, str]):
    """The configuration a run folder was started with, with the command line's overrides."""
    from inspect_tinker.config import apply_overrides, build_config
    from inspect_tinker.tracking import RunFolder

    recorded = RunFolder.open(run_dir).read_config()
    return build_config(apply_overrides(recorded, overrides), str(run_dir / "config.json"), given=given)


@cli.command("run", epilog=f"""
\b
Examples:
  inspect-tinker run my-run.yaml
  inspect-tinker run my-run.yaml --set max_rounds=5 --base-model ./my-model-folder
  inspect-tinker run my-run.yaml --backend tinker --base-model Qwen/Qwen3-8B
  inspect-tinker run my-run.yaml --resume runs/my-run

{RUN_EXIT_CODES}
""")
@click.argument("config", type=PATH, required=False, metavar="CONFIG")
@click.option("--config", "config_option", type=PATH, metavar="FILE",
              help="The same as CONFIG (the older form, kept for existing scripts).")
@click.option("--resume", type=PATH, metavar="RUN_DIR", help="Continue this run folder instead of starting a new one.")
@click.option("--force", is_flag=True, help="With --resume: accept a changed configuration.")
@click.option("--allow-changed-inputs", is_flag=True,
              help="With --resume: go on although a file the run read (training data, candidate pool, evaluation "
              "or task file) changed since; the change is recorded as an event.")
@_config_overrides
@_placement
@_verbose
def run_command(config: Path | None, config_option: Path | None, resume: Path | None, force: bool,
                allow_changed_inputs: bool, **options) -> int:
    """Train and evaluate in rounds until the bar is met.

    CONFIG is the run's configuration file (.json, .yaml or .toml; every key is in
    docs/configuration.md). Each round trains the LoRA adapter, evaluates it on the configured Inspect
    tasks and decides: stop at the bar, or go on with the next hyperparameters and data
    chosen from the failures. Everything lands in the run folder, output_dir/run_name:
    the Inspect logs, checkpoints, events, summary.json and report.html.
    """
    from inspect_tinker.config import load_config

    if config is not None and config_option is not None:
        raise click.UsageError("CONFIG and --config are the same: give the config file once.")
    if config is None and config_option is None:
        raise click.UsageError("Missing argument 'CONFIG' (the run's config file).")
    overrides, given = _overrides(options)
    if allow_changed_inputs and resume is None:
        raise click.UsageError("--allow-changed-inputs goes with --resume: a new run reads its inputs afresh.")
    loaded = load_config(config or config_option, overrides, given=given)
    return _train(loaded, resume, force, options["verbose"], allow_changed_inputs)


@cli.command("demo", epilog=f"""
\b
Examples:
  inspect-tinker demo
  inspect-tinker demo --output-dir /tmp/runs --run-name first-try
  inspect-tinker demo --local-server

{RUN_EXIT_CODES}
""")
@_config_overrides
@_placement
@click.option("--local-server", is_flag=True,
              help="Train and evaluate through the tinker backend on a local Tinker-compatible server (SkyRL, JAX on "
              "CPU): the one serving the bundled model on --port, else one started for the demo and stopped after it.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="The local server's port on 127.0.0.1.")
@_verbose
def demo_command(local_server: bool, port: int, **options) -> int:
    """Run the packaged demo on the bundled model, offline.

    SmolLM2-135M-Instruct learns made-up facts about Valdoria in rounds until 75% of a set
    of paraphrased questions are answered. The run folder goes under ./runs unless
    --output-dir says otherwise.
    """
    from inspect_tinker.config import load_config
    from inspect_tinker.demo import DEMO_CONFIG

    overrides, given = _overrides(options)
    overrides.setdefault("output_dir", "runs")  # in the working directory, not the package
    if not local_server:
        return _train(load_config(DEMO_CONFIG, overrides, given=given), None, False, options["verbose"])
    if options["backend"] is not None or options["base_model"] is not None:
        raise click.UsageError("--local-server trains the bundled model on the tinker backend: drop --backend and --base-model.")
    from inspect_tinker.provider.tinker_server import local_server as serving

    say = lambda line: Console(stderr=True).print(line, highlight=False, soft_wrap=True)  # noqa: E731
    with serving("bundled", port, say=say) as server:
        os.environ.setdefault("TINKER_API_KEY", "tml-local")  # the local server checks no key; the SDK wants one of this form
        overrides |= {"backend": "tinker", "base_model": server.model.name, "tinker_base_url": server.base_url}
        given |= {key: "--local-server" for key in ("backend", "base_model", "tinker_base_url")}
        return _train(load_config(DEMO_CONFIG, overrides, given=given), None, False, options["verbose"])


@cli.command("resume", epilog=f"""
\b
Examples:
  inspect-tinker resume runs/my-run
  inspect-tinker resume runs/my-run --set max_rounds=6 --force
  inspect-tinker resume runs/my-run --allow-changed-inputs

{RUN_EXIT_CODES}
""")
@click.argument("run_dir", type=PATH, metavar="RUN_DIR")
@click.option("--force", is_flag=True, help="Accept overrides that change the configuration.")
@click.option("--allow-changed-inputs", is_flag=True,
              help="Go on although a file the run read (training data, candidate pool, evaluation or task file) "
              "changed since; the change is recorded as an event.")
@_config_overrides
@_verbose
def resume_command(run_dir: Path, force: bool, allow_changed_inputs: bool, **options) -> int:
    """Continue a stopped or crashed run from its last durable point.

    RUN_DIR is the run's folder (output_dir/run_name). The run continues with the
    configuration it was started with; a changed one (through --set and the other
    overrides) needs --force. The files it read must hold what they held then (their
    sha256 is in inputs.json); changed ones need --allow-changed-inputs.
    """
    overrides, given = _overrides(options)
    return _train(_recorded_config(run_dir, overrides, given), run_dir, force, options["verbose"], allow_changed_inputs)


@cli.command("tune", epilog="""
\b
Examples:
  inspect-tinker tune my-run.yaml --trials 20
  inspect-tinker tune my-run.yaml --trials 40 --storage TUNE_STORAGE_URL --study-name my-search

\b
Exit codes: 0 the best trial met the bar; 1 no trial did; 2 bad usage,
configuration or data; 130 Ctrl-C, 143 SIGTERM (the same command continues
the search).
""")
@click.argument("config", type=PATH, metavar="CONFIG")
@click.option("--trials", type=int, required=True, metavar="N",
              help="Finished trials the study should hold; trials already in it count, so a rerun resumes.")
@click.option("--storage", metavar="URL",
              help="Override tune.storage: an Optuna database URL (or the name of a secret holding it) "
                   "shared by workers on several machines.")
@click.option("--study-name", help="Override tune.study_name.")
@_config_overrides
@_placement
@_verbose
def tune_command(config: Path, trials: int, **options) -> int:
    """Search learning rate, LoRA rank and steps per round with Optuna.

    Each trial is a full run of CONFIG with the trial's values; the study (its database,
    trial folders and best_config.yaml) lives in the run folder; workers started with the
    same command (or sharing --storage) draw trials from one study.
    """
    from inspect_tinker.config import load_config
    from inspect_tinker.loop.graceful_stop import RunInterrupted
    from inspect_tinker.loop.tune import TUNED_KEYS, tune, tune_folder

    if trials < 1:
        raise UsageError(f"--trials {trials}: give the number of trials, at least 1.")
    overrides, given = _overrides(options)
    loaded = load_config(config, overrides, given=given)
    _check_backend(loaded)
    _quiet_libraries(options["verbose"])
    console = Console()
    folder = tune_folder(loaded, config)
    try:
        outcome = tune(loaded, folder, trials, say=lambda line: console.print(line, highlight=False))
    except RunInterrupted as err:
        console.print(f"Interrupted. Continue the search with the same command (the study is kept in {folder}).")
        return err.exit_code
    if outcome.best_params is None:
        console.print(f"No trial completed ({outcome.finished_trials} pruned); see {folder / 'trials'}.")
        return 1
    settings = ", ".join(f"{k} = {outcome.best_params[k]:.3g}" for k in TUNED_KEYS)
    verdict = "bar met" if outcome.bar_met else "bar not met"
    console.print(f"\nBest of {outcome.finished_trials} trials: trial {outcome.best_trial}, score "
                  f"{outcome.best_score:.3f} ({verdict}): {settings}", highlight=False)
    console.print(f"Config with these settings: {outcome.best_config}", soft_wrap=True, highlight=False)
    console.print(f"Next: {shlex.join(['inspect-tinker', 'run', str(outcome.best_config)])}",
                  soft_wrap=True, highlight=False)
    return 0 if outcome.bar_met else 1


@cli.command("export", epilog="""
\b
Examples:
  inspect-tinker export runs/my-run --best --merged my-model
  inspect-tinker export runs/my-run --round 2 --adapter my-adapter
""")
@click.argument("run_dir", type=PATH, metavar="RUN_DIR")
@click.option("--round", "round_no", type=int, metavar="N", help="Round to export (default: the best round).")
@click.option("--best", is_flag=True, help="Export the best round (the default).")
@click.option("--merged", type=PATH, metavar="OUT", help="Write a merged Hugging Face model folder.")
@click.option("--adapter", type=PATH, metavar="OUT", help="Write the PEFT adapter folder.")
@_verbose
def export_command(run_dir: Path, round_no: int | None, best: bool, merged: Path | None, adapter: Path | None,
                   verbose: bool) -> int:
    """Export a round's adapter, or merge it into the base model.

    RUN_DIR is a local-backend run's folder. --merged OUT writes a model folder that
    AutoModelForCausalLM.from_pretrained loads (tokenizer included); --adapter OUT the PEFT
    adapter (loads in PEFT and vLLM). One of them is required. Exit 0, or 2 when the
    round has no saved checkpoint or OUT exists.
    """
    from inspect_tinker.tracking.export import export_adapter, export_merged
    from inspect_tinker.tracking import RunFolder

    _one_of(**{"--round": round_no, "--best": best})
    _one_of(required=True, **{"--merged": merged, "--adapter": adapter})
    _quiet_libraries(verbose)
    folder = RunFolder.open(run_dir)
    if merged:
        out = export_merged(folder, round_no, merged)
        Console().print(f"Merged model written to {out} (AutoModelForCausalLM.from_pretrained({str(out)!r}))")
    else:
        out = export_adapter(folder, round_no, adapter)
        Console().print(f"Adapter written to {out} (PeftModel.from_pretrained(base_model, {str(out)!r}))")
    return 0


@cli.command("sync", epilog="""
\b
Example:
  inspect-tinker sync runs/my-run
""")
@click.argument("run_dir", type=PATH, metavar="RUN_DIR")
@_verbose
def sync_command(run_dir: Path, verbose: bool) -> int:
    """Send what a run could not deliver to MLflow, EvalOps or webhooks.

    RUN_DIR is the run's folder, e.g. runs/<run-name>, or the log dir of an `inspect eval`
    whose tracking hooks could not deliver (their outboxes are in <log dir>/inspect-tinker/;
    run sync with the environment variables the eval had). Exit 0 when nothing is left
    undelivered, 1 when something still is (nothing is lost: run sync again later).
    """
    from inspect_tinker.tracking.console import ConsoleSink
    from inspect_tinker.tracking.sinks import hook_folders, sync_outbox

    folders = [run_dir] if (run_dir / "config.json").is_file() else hook_folders(run_dir)
    if not folders:
        raise UsageError(
            f"{run_dir} is neither a run folder (no config.json) nor an Inspect log dir holding tracking hook "
            "outboxes (inspect-tinker/<run id>/<hook>/); pass the folder a run created or the eval's --log-dir."
        )
    undelivered = False
    for folder in folders:
        report = sync_outbox(folder)
        if report is None:
            print(f"{folder}: the run has no remote sinks (MLflow, EvalOps, webhooks); nothing to deliver.")
            continue
        ConsoleSink(Console()).handle({"event": "delivery_report", **report})
        undelivered = undelivered or bool(report["outbox"])
    return 1 if undelivered else 0


@cli.command("eval", epilog="""
\b
Examples:
  inspect-tinker eval --config my-run.yaml
  inspect-tinker eval --config my-run.yaml --adapter path/to/adapter
  inspect-tinker eval --run runs/my-run
  inspect-tinker eval --run runs/my-run --round 2 --set eval_threshold=0.9

\b
Exit codes: 0 the evaluated model meets the bar; 1 it does not; 2 bad usage,
configuration or data; 130 Ctrl-C.
""")
@click.option("--config", type=PATH, metavar="FILE", help="Config file; defaults to the config.json of --run.")
@click.option("--adapter", type=PATH, help="A PEFT adapter folder (without it: the base model).")
@click.option("--run", "run_dir", type=PATH, metavar="RUN_DIR",
              help="A run folder; evaluates its best round, or --round N.")
@click.option("--round", "round_no", type=int, metavar="N", help="With --run: the round whose adapter to evaluate.")
@_config_overrides
@_placement
@_verbose
def eval_command(config: Path | None, adapter: Path | None, run_dir: Path | None, round_no: int | None,
                 **options) -> int:
    """Evaluate the base model or a saved adapter, without training.

    The tasks and the bar come from --config, or from the run folder given with --run.
    The evaluation is a run folder of its own (never the evaluated run's), with its
    Inspect logs and summary.json.
    """
    from inspect_tinker.config import load_config
    from inspect_tinker.loop.evaluation import resolve_adapter, run_eval
    from inspect_tinker.tracking.console import ConsoleSink

    _one_of(**{"--adapter": adapter, "--run": run_dir})
    if round_no is not None and run_dir is None:
        raise UsageError("--round needs --run (the run folder whose round to evaluate).")
    adapter = resolve_adapter(adapter, run_dir, round_no)
    overrides, given = _overrides(options)
    if config is not None:
        loaded = load_config(config, overrides, given=given)
    elif run_dir is not None:
        loaded = _recorded_config(run_dir, overrides, given)
    else:
        raise UsageError("give --config (the tasks and bar to evaluate against), or --run with a run folder.")
    if "run_name" not in overrides:  # a new folder, never the evaluated run's own
        loaded = loaded.model_copy(update={"run_name": None})
    _check_backend(loaded)
    _quiet_libraries(options["verbose"])
    return run_eval(loaded, adapter, sinks=[ConsoleSink(Console())])["exit_code"]


@cli.group("data", epilog="""
\b
Example:
  inspect-tinker data check train.jsonl --eval eval.jsonl
""")
def data_group() -> None:
    """Work with training data: `data check` reads, checks, deduplicates and decontaminates it."""


@data_group.command("check", epilog="""
\b
Examples:
  inspect-tinker data check train.jsonl --eval eval.jsonl
  inspect-tinker data check train.jsonl --config my-run.yaml --strict --output report.json

\b
Exit codes: 0 checked; 1 under --strict when any record was dropped;
2 no usable record left, or bad input.
""")
@click.argument("train_file", type=PATH, metavar="TRAIN")
@click.option("--eval", "eval_files", type=PATH, multiple=True, metavar="EVAL_FILE",
              help="QA evaluation file to decontaminate against (repeatable), besides the config's eval_tasks.")
@click.option("--config", type=PATH, metavar="FILE",
              help="Take the data settings, base model and evaluation tasks from this config.")
@click.option("--output", type=PATH, default=Path("data_report.json"), show_default=True,
              help="Where the JSON report is written.")
@click.option("--strict", is_flag=True, help="Exit 1 when any record was dropped.")
@_config_overrides
@_verbose
def data_check_command(train_file: Path, eval_files: tuple[Path, ...], config: Path | None, output: Path,
                       strict: bool, **options) -> int:
    """Read, check, deduplicate and decontaminate a training file; print and save the report.

    TRAIN is a .jsonl, .json, .csv or .parquet file. This is the run's data step alone,
    with the full report: counts in and out per reason, token lengths, duplicate clusters,
    contamination hits and every dropped record.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers import AutoTokenizer

    from inspect_tinker.config import EvalTaskConfig, load_config
    from inspect_tinker.data.decontamination import evaluation_inputs
    from inspect_tinker.data.prepare import NoTrainingData, check_training_records, prepare_training_data
    from inspect_tinker.loop.eval_tasks import build_tasks
    from inspect_tinker.provider.base_model import resolve_base_model
    from inspect_tinker.tracking.console import print_data_report

    overrides, given = _overrides(options)
    loaded = load_config(config, {**overrides, "train_file": str(train_file)}, need_eval_tasks=False, given=given)
    for path in eval_files:
        if not path.is_file():
            raise UsageError(f"--eval {path}: file does not exist.")
    loaded = loaded.model_copy(update={"eval_tasks": loaded.eval_tasks + [EvalTaskConfig(path=p) for p in eval_files]})
    tasks = [t.task for t in build_tasks(loaded)]
    _quiet_libraries(options["verbose"])
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(loaded.base_model))

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)
    stages: dict[str, object] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in stages:
            stages[stage] = bars.add_task(f"{stage} records", total=total)
        bars.update(stages[stage], completed=done, total=total)

    try:
        with bars:
            checked = check_training_records(loaded.train_file, loaded.data, evaluation_inputs(tasks), progress=progress)
            _, report = prepare_training_data(checked, tokenizer, loaded.max_seq_length, loaded.data, progress=progress)
        failure = None
    except NoTrainingData as err:
        report, failure = err.report, err
    output.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console = Console()
    print_data_report(console, report.to_dict())
    console.print(f"\nReport written to {output}", highlight=False, soft_wrap=True)
    if failure is not None:
        raise failure
    return 1 if strict and report.dropped_total else 0


@cli.command("report", epilog="""
\b
Example:
  inspect-tinker report runs/my-run
""")
@click.argument("run_dir", type=PATH, metavar="RUN_DIR")
@_verbose
def report_command(run_dir: Path, verbose: bool) -> int:
    """Write a run's HTML report and plots into its folder.

    RUN_DIR is the run's folder; the report is RUN_DIR/report.html, its charts
    RUN_DIR/plots/*.png. Every run writes it when it ends; this writes it again at any
    time, also for a run in progress.
    """
    from inspect_tinker.report.html import write_report

    path = write_report(run_dir)
    Console().print(f"Report written to {path} (charts also in {path.parent / 'plots'})", soft_wrap=True,
                    highlight=False)
    return 0


@cli.command("compare", epilog="""
\b
Examples:
  inspect-tinker compare runs/without-pool runs/with-pool
  inspect-tinker compare runs/my-run runs/my-run --round-a 0 --round-b 3
  inspect-tinker compare logs/base.eval logs/tuned.eval --json
""")
@click.argument("a", type=PATH, metavar="A")
@click.argument("b", type=PATH, metavar="B")
@click.option("--round-a", type=int, metavar="N", help="When A is a run folder: its round to compare (default: the best).")
@click.option("--round-b", type=int, metavar="N", help="When B is a run folder: its round to compare (default: the best).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON, for scripts.")
@_verbose
def compare_command(a: Path, b: Path, round_a: int | None, round_b: int | None, as_json: bool, verbose: bool) -> int:
    """Did B fix more than it broke? Two evaluations of the same samples, paired.

    A and B are Inspect logs (.eval or .json, from any `inspect eval`) or run folders (a
    run folder stands for its best round's evaluation logs). Samples are matched on task,
    sample id and epoch. For each task both evaluated: the scores on the shared samples,
    the difference B - A with its paired 95 % interval, McNemar's exact p-value, and the
    samples B fixed and broke. Exits 0 when compared, 2 when A and B share no sample or
    either is not an evaluation.
    """
    from inspect_tinker.report.compare import compare_evaluations, read_evaluation

    comparison = compare_evaluations(read_evaluation(a, round_a), read_evaluation(b, round_b))
    print(json.dumps(comparison.to_dict(), indent=2) if as_json else "\n".join(comparison.lines()))
    return 0


@cli.command("prune", epilog="""
\b
Examples:
  inspect-tinker prune runs/my-run
  inspect-tinker prune runs/my-run --delete
""")
@click.argument("run_dir", type=PATH, metavar="RUN_DIR")
@click.option("--delete", is_flag=True, help="Delete them; without it nothing is deleted (a dry run).")
@_verbose
def prune_command(run_dir: Path, delete: bool, verbose: bool) -> int:
    """Delete a run's checkpoints on the Tinker service, but the best and the last round's.

    RUN_DIR is a run folder of backend: tinker. Every checkpoint stored on the service is
    billed; a run stores a training state each round, partial ones, and the sampler
    weights of each evaluation. Kept: the best and the last round's training state and
    sampler weights, and the state a resume would start from. Without --delete it only
    lists what it would delete. The config key prune_checkpoints does the same when a run ends.
    """
    from inspect_tinker.loop.pruning import prune_run
    from inspect_tinker.provider.settings import UNREACHABLE_TIMEOUT_SECONDS
    from inspect_tinker.tracking import EventLog, RunFolder

    folder = RunFolder.open(run_dir)
    config = folder.read_config()
    if config.get("backend") != "tinker":
        raise UsageError(f"{run_dir} trained with backend: {config.get('backend')}; its checkpoints are folders in the "
                         "run folder, not on the Tinker service (keep_last bounds their optimizer states).")
    if delete:
        folder.acquire()  # refused while the run is running: it may still need what would be deleted
    try:
        prune_run(folder, EventLog(folder), base_url=config.get("tinker_base_url"),
                  unreachable_timeout=config.get("tinker_unreachable_timeout", UNREACHABLE_TIMEOUT_SECONDS), delete=delete)
    finally:
        folder.release()
    return 0


@cli.command("runs", epilog="""
\b
Examples:
  inspect-tinker runs
  inspect-tinker runs /data/runs --json
""")
@click.argument("runs_dir", type=PATH, default=Path("runs"), metavar="[DIR]")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON, for scripts.")
@_verbose
def runs_command(runs_dir: Path, as_json: bool, verbose: bool) -> int:
    """List the runs in a folder: status, rounds, scores.

    DIR holds run folders (default: runs). For each run: its status (finished, running,
    interrupted, crashed, not started, unreadable), rounds trained, baseline and best
    score, whether the bar was met; for a run that stopped early, what happened and the
    command that resumes it.
    """
    from inspect_tinker.report.runs import list_runs, print_runs
    from inspect_tinker.tracking.sinks import notice_crash

    # A run killed without a word is recorded as crashed, and its alert sent, by the first
    # command that finds it (tracking/crashes.py); this listing is often that command.
    for run_dir in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        if (run_dir / "run.lock").is_file() and (run_dir / "config.json").is_file():
            if crash := notice_crash(run_dir):
                print(f"{run_dir.name}: {crash['message']}; recorded as crashed (alert run_crashed)", file=sys.stderr)
    rows = list_runs(runs_dir)
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print_runs(rows, runs_dir, Console())
    return 0


@cli.command("dev-server", epilog="""
\b
Examples:
  inspect-tinker dev-server
  inspect-tinker dev-server --model tiny --port 8200
""")
@click.option("--model", default="bundled", show_default=True, metavar="MODEL",
              help="bundled (SmolLM2-135M-Instruct), tiny (a random 2-layer Llama for protocol tests) "
              "or a Llama/Qwen3 model folder.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port on 127.0.0.1.")
@click.option("--max-lora-adapters", type=click.IntRange(min=2), default=DEFAULT_MAX_LORA_ADAPTERS, show_default=True,
              metavar="N", help="Adapter slots; N - 1 training runs at once (slot 0 is the base model's).")
@click.option("--state-dir", type=PATH, metavar="DIR",
              help="Database and checkpoints (default: one folder per model and port in the user cache).")
@_verbose
def dev_server_command(model: str, port: int, max_lora_adapters: int, state_dir: Path | None, verbose: bool) -> int:
    """Run a local Tinker-compatible server (SkyRL, JAX on CPU) until Ctrl-C, for trying
    backend: tinker offline. Its own environment is installed into the user cache on first use."""
    from inspect_tinker.provider.tinker_server import serve

    say = lambda line: Console().print(line, highlight=False, soft_wrap=True)  # noqa: E731
    return serve(model, port, max_lora_adapters, state_dir, say=say)


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return its exit code."""
    try:
        return cli.main(argv, prog_name="inspect-tinker", standalone_mode=False)
    except click.ClickException as err:  # a mistake click found (unknown option, missing argument): exit 2
        err.show()
        return err.exit_code
    except click.Abort:  # Ctrl-C while click was still reading the command line
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
