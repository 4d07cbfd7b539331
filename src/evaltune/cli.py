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

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-model", help="override base_model (bundled name, model folder, or hub id)")
        p.add_argument("--output-dir", type=Path, help="override output_dir (where run folders go)")
        p.add_argument("--run-name", help="override run_name")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config key, e.g. --set max_rounds=2 --set generation.max_tokens=16")
        p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks and library logs")

    run = sub.add_parser("run", help="train and evaluate in rounds until the bar is met")
    run.add_argument("--config", type=Path, required=True, help="config file (.json, .yaml or .toml)")
    common(run)
    demo = sub.add_parser("demo", help="run the packaged demo on the bundled model")
    common(demo)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    from evaltune.config import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    for key in ("base_model", "output_dir", "run_name"):
        value = getattr(args, key)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        from evaltune.config import load_config
        from evaltune.demo import DEMO_CONFIG
        from evaltune.loop import run
        from evaltune.tracking.console import ConsoleSink

        config_path = DEMO_CONFIG if args.command == "demo" else args.config
        overrides = _overrides(args)
        if args.command == "demo":
            overrides.setdefault("output_dir", "runs")  # in the working directory, not the package
        config = load_config(config_path, overrides)
        if not args.verbose:
            _quiet_libraries()
        summary = run(config, sinks=[ConsoleSink(console)])
        return summary["exit_code"]
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
