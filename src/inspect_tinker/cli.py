"""The `inspect-tinker` command. Exit codes: 0 bar met, 1 bar not met, 2 bad usage/config/data,
3 unexpected error, 130 interrupted (Ctrl-C), 143 stopped by SIGTERM. `inspect-tinker sync`: 0 all delivered, 1 some still undelivered."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import traceback
from pathlib import Path

from rich.console import Console

from inspect_tinker.errors import UsageError
from inspect_tinker.graceful_stop import StoppedAtOnce
from inspect_tinker.summary import EXIT_INTERRUPTED, EXIT_USAGE

EXIT_CRASH = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inspect-tinker", description="Evaluation-driven LoRA fine-tuning.")
    sub = parser.add_subparsers(dest="command", required=True)

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-model", help="override base_model (bundled name, model folder, or hub id)")
        p.add_argument("--backend", choices=["local", "tinker"], help="override backend (tinker: the managed Tinker service)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set max_rounds=2 --set generation.max_tokens=16")
        p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and library logs")

    def placement(p: argparse.ArgumentParser) -> None:
        p.add_argument("--output-dir", type=Path, help="override output_dir (where run folders go)")
        p.add_argument("--run-name", help="override run_name")

    run = sub.add_parser("run", help="train and evaluate in rounds until the bar is met")
    run.add_argument("--config", type=Path, required=True, help="config file (.json, .yaml or .toml)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue this run folder instead of starting a new one")
    run.add_argument("--force", action="store_true", help="with --resume: accept a changed configuration")
    overrides(run)
    placement(run)

    demo = sub.add_parser("demo", help="run the packaged demo on the bundled model")
    overrides(demo)
    placement(demo)

    resume = sub.add_parser("resume", help="continue a stopped or crashed run from its last durable point")
    resume.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    resume.add_argument("--force", action="store_true", help="accept overrides that change the configuration")
    overrides(resume)

    tune = sub.add_parser("tune", help="search learning rate, LoRA rank and steps per round with Optuna")
    tune.add_argument("config", type=Path, metavar="CONFIG", help="config file (.json, .yaml or .toml)")
    tune.add_argument("--trials", type=int, required=True, metavar="N",
                      help="finished trials the study should hold; trials already in it count, so a rerun resumes")
    tune.add_argument("--storage", metavar="URL",
                      help="override tune.storage: an Optuna database URL shared by workers on several machines")
    tune.add_argument("--study-name", help="override tune.study_name")
    overrides(tune)
    placement(tune)

    export = sub.add_parser("export", help="export a round's adapter, or merge it into the base model")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--round", type=int, help="round to export (default: the best round)")
    which.add_argument("--best", action="store_true", help="export the best round (the default)")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--merged", type=Path, metavar="OUT", help="write a merged Hugging Face model folder")
    target.add_argument("--adapter", type=Path, metavar="OUT", help="write the PEFT adapter folder")
    export.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")

    sync = sub.add_parser("sync", help="deliver what a run could not deliver to MLflow, EvalOps or webhooks")
    sync.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run's folder, e.g. runs/<run-name>")
    sync.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")

    ev = sub.add_parser("eval", help="evaluate the base model or a saved adapter on the configured tasks, without training")
    ev.add_argument("--config", type=Path, help="config file; defaults to the config.json of --run")
    model = ev.add_mutually_exclusive_group()
    model.add_argument("--adapter", type=Path, help="a PEFT adapter folder (without it: the base model)")
    model.add_argument("--run", type=Path, metavar="RUN_DIR", help="a run folder; evaluates its best round, or --round N")
    ev.add_argument("--round", type=int, help="with --run: the round whose adapter to evaluate")
    overrides(ev)
    placement(ev)

    data = sub.add_parser("data", help="work with training data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser(
        "check", help="read, check, deduplicate and decontaminate a training file; print and save the report"
    )
    check.add_argument("train_file", type=Path, metavar="TRAIN", help="training file (.jsonl, .json, .csv, .parquet)")
    check.add_argument("--eval", action="append", type=Path, default=[], metavar="EVAL_FILE",
                       help="QA evaluation file to decontaminate against (repeatable), besides the config's eval_tasks")
    check.add_argument("--config", type=Path, help="take the data settings, base model and evaluation tasks from this config")
    check.add_argument("--output", type=Path, default=Path("data_report.json"), help="where the JSON report is written")
    check.add_argument("--strict", action="store_true", help="exit 1 when any record was dropped")
    overrides(check)

    report = sub.add_parser("report", help="write a run's HTML report and plots into its folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")

    runs = sub.add_parser("runs", help="list the runs in a folder: status, rounds, scores")
    runs.add_argument("dir", type=Path, nargs="?", default=Path("runs"), metavar="DIR",
                      help="the folder holding run folders (default: runs)")
    runs.add_argument("--json", action="store_true", help="print the list as JSON, for scripts")
    runs.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    return parser


def _overrides(args: argparse.Namespace) -> tuple[dict, dict[str, str]]:
    """The config keys set on the command line, and for each the option that set it (for messages)."""
    from inspect_tinker.config import parse_override

    overrides, given = {}, {}
    for text in args.set:
        key, overrides[key] = parse_override(text)
        given[key] = f"--set {key}"  # without the value: it may be a URL with a password
    options = {key: key for key in ("base_model", "backend", "output_dir", "run_name")}
    options.update({key: f"tune.{key}" for key in ("storage", "study_name")})
    for option, key in options.items():
        value = getattr(args, option, None)
        if value is not None:
            overrides[key] = str(value)
            given[key] = f"--{option.replace('_', '-')}"
    return overrides, given


def _quiet_libraries() -> None:
    # Library progress bars and warnings would drown the run's own output.
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")


def _resume_config(run_dir: Path, config, force: bool):
    """Check `config` against the run's recorded one; return the changed keys (refused unless force)."""
    from inspect_tinker.config import changed_keys
    from inspect_tinker.tracking import RunFolder

    changed = changed_keys(RunFolder.open(run_dir).read_config(), config.model_dump(mode="json"))
    if changed and not force:
        raise UsageError(
            f"the configuration differs from the one {run_dir} was started with, in: {', '.join(changed)}. "
            "Resume with the same configuration, or pass --force to accept the change."
        )
    return changed


def _train(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.config import apply_overrides, build_config, load_config
    from inspect_tinker.demo import DEMO_CONFIG
    from inspect_tinker.loop import run
    from inspect_tinker.tracking import RunFolder
    from inspect_tinker.tracking.console import ConsoleSink

    overrides, given = _overrides(args)
    resume_dir = args.run_dir if args.command == "resume" else getattr(args, "resume", None)
    if args.command == "resume":
        recorded = RunFolder.open(resume_dir).read_config()
        config = build_config(apply_overrides(recorded, overrides), str(resume_dir / "config.json"), given=given)
    else:
        if args.command == "demo":
            overrides.setdefault("output_dir", "runs")  # in the working directory, not the package
        config = load_config(DEMO_CONFIG if args.command == "demo" else args.config, overrides, given=given)
    changed = _resume_config(resume_dir, config, args.force) if resume_dir else []
    if not args.verbose:
        _quiet_libraries()
    from inspect_tinker.graceful_stop import RunInterrupted

    try:
        summary = run(config, sinks=[ConsoleSink(console)], resume=resume_dir, changed_keys=changed)
    except RunInterrupted as err:
        return err.exit_code
    return summary["exit_code"]


def _tune(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.config import load_config
    from inspect_tinker.graceful_stop import RunInterrupted
    from inspect_tinker.tune import TUNED_KEYS, tune, tune_folder

    if args.trials < 1:
        raise UsageError(f"--trials {args.trials}: give the number of trials, at least 1.")
    overrides, given = _overrides(args)
    config = load_config(args.config, overrides, given=given)
    if not args.verbose:
        _quiet_libraries()
    folder = tune_folder(config, args.config)
    try:
        outcome = tune(config, folder, args.trials, say=lambda line: console.print(line, highlight=False))
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
    console.print(f"Next: {shlex.join(['inspect-tinker', 'run', '--config', str(outcome.best_config)])}",
                  soft_wrap=True, highlight=False)
    return 0 if outcome.bar_met else 1


def _export(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.export import export_adapter, export_merged
    from inspect_tinker.tracking import RunFolder

    if not args.verbose:
        _quiet_libraries()
    folder = RunFolder.open(args.run_dir)
    if args.merged:
        out = export_merged(folder, args.round, args.merged)
        console.print(f"Merged model written to {out} (AutoModelForCausalLM.from_pretrained({str(out)!r}))")
    else:
        out = export_adapter(folder, args.round, args.adapter)
        console.print(f"Adapter written to {out} (PeftModel.from_pretrained(base_model, {str(out)!r}))")
    return 0


def _sync(args: argparse.Namespace, console: Console) -> int:
    """Deliver a run's outbox: exit 0 when nothing is left undelivered, 1 when something is."""
    from inspect_tinker.tracking.console import ConsoleSink
    from inspect_tinker.tracking.sinks import sync_outbox

    report = sync_outbox(args.run_dir)
    if report is None:
        print(f"{args.run_dir}: the run has no remote sinks (MLflow, EvalOps, webhooks); nothing to deliver.")
        return 0
    ConsoleSink(console).handle({"event": "delivery_report", **report})
    return 1 if report["outbox"] else 0


def _eval(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.config import apply_overrides, build_config, load_config
    from inspect_tinker.evaluation import resolve_adapter, run_eval
    from inspect_tinker.tracking import RunFolder
    from inspect_tinker.tracking.console import ConsoleSink

    if args.round is not None and args.run is None:
        raise UsageError("--round needs --run (the run folder whose round to evaluate).")
    adapter = resolve_adapter(args.adapter, args.run, args.round)
    overrides, given = _overrides(args)
    if args.config is not None:
        config = load_config(args.config, overrides, given=given)
    elif args.run is not None:
        recorded = RunFolder.open(args.run).read_config()
        config = build_config(apply_overrides(recorded, overrides), str(args.run / "config.json"), given=given)
    else:
        raise UsageError("give --config (the tasks and bar to evaluate against), or --run with a run folder.")
    if "run_name" not in overrides:  # a new folder, never the evaluated run's own
        config = config.model_copy(update={"run_name": None})
    if not args.verbose:
        _quiet_libraries()
    return run_eval(config, adapter, sinks=[ConsoleSink(console)])["exit_code"]


def _data_check(args: argparse.Namespace, console: Console) -> int:
    """`inspect-tinker data check`: the run's data step alone, with the full report. Exit 0, or 1
    under --strict when any record was dropped; 2 when nothing usable is left."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers import AutoTokenizer

    from inspect_tinker.config import EvalTaskConfig, load_config
    from inspect_tinker.data import NoTrainingData, check_training_records, evaluation_inputs, prepare_training_data
    from inspect_tinker.evals import build_tasks
    from inspect_tinker.models import resolve_base_model
    from inspect_tinker.tracking.console import print_data_report

    overrides, given = _overrides(args)
    config = load_config(args.config, {**overrides, "train_file": str(args.train_file)}, need_eval_tasks=False,
                         given=given)
    for path in args.eval:
        if not path.is_file():
            raise UsageError(f"--eval {path}: file does not exist.")
    config = config.model_copy(update={"eval_tasks": config.eval_tasks + [EvalTaskConfig(path=p) for p in args.eval]})
    tasks = [t.task for t in build_tasks(config)]
    if not args.verbose:
        _quiet_libraries()
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(config.base_model))

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)
    stages: dict[str, object] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in stages:
            stages[stage] = bars.add_task(f"{stage} records", total=total)
        bars.update(stages[stage], completed=done, total=total)

    try:
        with bars:
            checked = check_training_records(config.train_file, config.data, evaluation_inputs(tasks), progress=progress)
            _, report = prepare_training_data(checked, tokenizer, config.max_seq_length, config.data, progress=progress)
        failure = None
    except NoTrainingData as err:
        report, failure = err.report, err
    args.output.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print_data_report(console, report.to_dict())
    console.print(f"\nReport written to {args.output}", highlight=False, soft_wrap=True)
    if failure is not None:
        raise failure
    return 1 if args.strict and report.dropped_total else 0


def _report(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.report import write_report

    path = write_report(args.run_dir)
    console.print(f"Report written to {path} (charts also in {path.parent / 'plots'})", soft_wrap=True, highlight=False)
    return 0


def _runs(args: argparse.Namespace, console: Console) -> int:
    from inspect_tinker.report import list_runs
    from inspect_tinker.report.runs import print_runs
    from inspect_tinker.tracking.sinks import notice_crash

    # A run killed without a word is recorded as crashed, and its alert sent, by the first
    # command that finds it (tracking/crashes.py); this listing is often that command.
    for run_dir in sorted(args.dir.iterdir()) if args.dir.is_dir() else []:
        if (run_dir / "run.lock").is_file() and (run_dir / "config.json").is_file():
            if crash := notice_crash(run_dir):
                print(f"{run_dir.name}: {crash['message']}; recorded as crashed (alert run_crashed)", file=sys.stderr)
    rows = list_runs(args.dir)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print_runs(rows, args.dir, console)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        commands = {
            "export": _export, "sync": _sync, "eval": _eval, "data": _data_check, "tune": _tune,
            "report": _report, "runs": _runs,
        }
        return commands.get(args.command, _train)(args, console)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_USAGE
    except KeyboardInterrupt as err:
        print("\ninterrupted", file=sys.stderr)
        return err.exit_code if isinstance(err, StoppedAtOnce) else EXIT_INTERRUPTED
    except Exception as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err.__class__.__name__}: {err}\n(run with --verbose for the traceback)", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())
