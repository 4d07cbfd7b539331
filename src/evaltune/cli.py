"""The `evaltune` command. Exit codes: 0 bar met, 1 bar not met, 2 bad usage/config/data,
3 unexpected error, 130 interrupted."""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from rich.console import Console

from evaltune.errors import UsageError
from evaltune.summary import EXIT_INTERRUPTED, EXIT_USAGE

EXIT_CRASH = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaltune", description="Evaluation-driven LoRA fine-tuning.")
    sub = parser.add_subparsers(dest="command", required=True)

    def overrides(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-model", help="override base_model (bundled name, model folder, or hub id)")
        p.add_argument("--engine", choices=["local", "tinker"], help="override engine (tinker: the managed Tinker service)")
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

    export = sub.add_parser("export", help="export a round's adapter, or merge it into the base model")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--round", type=int, help="round to export (default: the best round)")
    which.add_argument("--best", action="store_true", help="export the best round (the default)")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--merged", type=Path, metavar="OUT", help="write a merged Hugging Face model folder")
    target.add_argument("--adapter", type=Path, metavar="OUT", help="write the PEFT adapter folder")
    export.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    from evaltune.config import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    for key in ("base_model", "engine", "output_dir", "run_name"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = str(value)
    return overrides


def _quiet_libraries() -> None:
    # Library progress bars and warnings would drown the run's own output.
    import warnings

    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore")


def _resume_config(run_dir: Path, config, force: bool):
    """Check `config` against the run's recorded one; return the changed keys (refused unless force)."""
    from evaltune.config import changed_keys
    from evaltune.tracking import RunFolder

    changed = changed_keys(RunFolder.open(run_dir).read_config(), config.model_dump(mode="json"))
    if changed and not force:
        raise UsageError(
            f"the configuration differs from the one {run_dir} was started with, in: {', '.join(changed)}. "
            "Resume with the same configuration, or pass --force to accept the change."
        )
    return changed


def _train(args: argparse.Namespace, console: Console) -> int:
    from evaltune.config import apply_overrides, build_config, load_config
    from evaltune.demo import DEMO_CONFIG
    from evaltune.loop import run
    from evaltune.tracking import RunFolder
    from evaltune.tracking.console import ConsoleSink

    overrides = _overrides(args)
    resume_dir = args.run_dir if args.command == "resume" else getattr(args, "resume", None)
    if args.command == "resume":
        recorded = RunFolder.open(resume_dir).read_config()
        config = build_config(apply_overrides(recorded, overrides), str(resume_dir / "config.json"))
    else:
        if args.command == "demo":
            overrides.setdefault("output_dir", "runs")  # in the working directory, not the package
        config = load_config(DEMO_CONFIG if args.command == "demo" else args.config, overrides)
    changed = _resume_config(resume_dir, config, args.force) if resume_dir else []
    if changed:
        RunFolder.open(resume_dir).write_config(config.model_dump(mode="json"))
    if not args.verbose:
        _quiet_libraries()
    from evaltune.graceful_stop import RunInterrupted

    try:
        summary = run(config, sinks=[ConsoleSink(console)], resume=resume_dir, changed_keys=changed)
    except RunInterrupted:
        return EXIT_INTERRUPTED
    return summary["exit_code"]


def _export(args: argparse.Namespace, console: Console) -> int:
    from evaltune.export import export_adapter, export_merged
    from evaltune.tracking import RunFolder

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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    try:
        return _export(args, console) if args.command == "export" else _train(args, console)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {err.__class__.__name__}: {err}\n(run with --verbose for the traceback)", file=sys.stderr)
        return EXIT_CRASH


if __name__ == "__main__":
    sys.exit(main())
