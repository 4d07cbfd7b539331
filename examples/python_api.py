"""Train an adapter and check it again from Python: the API a notebook or another program uses.

    python examples/python_api.py                                 # the offline demo, about 2 minutes
    python examples/python_api.py --set max_rounds=1 --output-dir /tmp/runs

It runs the packaged demo's config (examples/demo/config.yaml) with your overrides, prints
each round, then evaluates the best adapter again without training (`run_eval`), as
`inspect-tinker eval --run` does. Needs the `local` extra and the bundled model (README: Install).
"""

import argparse
import sys
from pathlib import Path

from inspect_tinker import load_config, run, run_eval
from inspect_tinker.config import parse_override
from inspect_tinker.demo import DEMO_CONFIG


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("runs"), help="where the run folders go")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = parser.parse_args()

    overrides = dict(map(parse_override, args.set)) | {"output_dir": str(args.output_dir)}
    config = load_config(DEMO_CONFIG, overrides)  # validated once: a bad key raises UsageError here

    summary = run(config)  # the whole loop; the same summary.json the CLI writes
    for r in summary["rounds"]:
        print(f"round {r['round']}: score {r['score']:.3f}, final loss {r['final_loss']}")
    print(f"bar met: {summary['bar_met']}; best round {summary['best_round']}, score {summary['best_score']:.3f}")

    if summary["best_adapter"] is not None:  # None when the untrained model was best
        # A run folder of its own beside the run's, named after it (the CLI's `eval --run` picks a fresh one).
        check_config = config.model_copy(update={"run_name": f"{Path(summary['run_dir']).name}-best"})
        checked = run_eval(check_config, adapter=Path(summary["best_adapter"]))
        print(f"the best adapter evaluated again: score {checked['score']:.3f} ({checked['run_dir']})")
    return summary["exit_code"]  # 0: bar met, 1: not met, as the CLI's


if __name__ == "__main__":
    sys.exit(main())
