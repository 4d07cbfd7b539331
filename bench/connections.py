"""How many requests in flight evaluate fastest: the `tinker` provider under Inspect's concurrency settings.

An Inspect user runs `inspect eval <task> --model tinker/<model>` without `--max-connections`. Inspect
then keeps requests in flight by its adaptive concurrency (from 20, between 10 and 100), and the
provider's own `max_connections()` (`batch_size` locally) applies only with
`--adaptive-connections false` or `--max-connections N`. Locally, what decides the speed is how
the requests in flight become batches: every batch costs about `max_tokens` forward passes, a
small one nearly as much as a full one on this CPU. So for each setting this records the batch
sizes the local sampler was given, beside the eval's wall time (from its log: the samples, not the
model load):

- `adaptive`: Inspect's default, no flag;
- `N` for N in `--connections`: `--max-connections N` (the provider's own default is 16).

Task: the packaged general-knowledge questions (20, greedy, 16 new tokens) x `--epochs`
(default 2: 40 samples). Each setting runs in a process of its own, `--repeat` times, interleaved.

Run: .venv/bin/python bench/connections.py [--epochs 2] [--repeat 1] [--connections 16,32]
Results are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime

os.environ.setdefault("INSPECT_EVAL_CTL_SERVER", "false")

import inspect_ai  # noqa: E402
from inspect_ai.model import get_model  # noqa: E402

from inspect_tinker.evals.general_knowledge import general_knowledge  # noqa: E402
from inspect_tinker.provider.base_model import BUNDLED_MODEL_NAME  # noqa: E402


def measure(setting: str, epochs: int) -> dict:
    """Evaluate once under `setting` in this process; return the batch sizes generated and the eval's seconds."""
    model = get_model(f"tinker/{BUNDLED_MODEL_NAME}", backend="local", memoize=False)
    sampler = model.api._opened.sampler  # the provider's LocalSampler: its batches are what we count
    batches: list[int] = []
    generate = sampler.generate

    def counted(prompts, num_samples, params):
        batches.append(len(prompts))
        return generate(prompts, num_samples, params)

    sampler.generate = counted
    flags = {} if setting == "adaptive" else {"max_connections": int(setting)}
    with tempfile.TemporaryDirectory() as logs:
        [log] = inspect_ai.eval(general_knowledge(), model=model, epochs=epochs, display="none",
                                log_level="error", log_dir=logs, **flags)
    seconds = (datetime.fromisoformat(log.stats.completed_at) - datetime.fromisoformat(log.stats.started_at)).total_seconds()
    return {"batches": batches, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--connections", default="16,32", help="the --max-connections values to compare with adaptive")
    parser.add_argument("--setting", help="measure this setting alone in this process (used internally)")
    args = parser.parse_args()
    if args.setting:
        print(json.dumps(measure(args.setting, args.epochs)))
        return

    settings = ["adaptive", *args.connections.split(",")]
    print(f"{20 * args.epochs} samples (20 questions x {args.epochs} epochs, 16 new tokens, greedy), batch_size 16; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print("| in flight | batches generated | eval seconds |")
    print("|---|---|---|")
    for _ in range(args.repeat):
        for setting in settings:
            child = subprocess.run([sys.executable, __file__, "--setting", setting, "--epochs", str(args.epochs)],
                                   capture_output=True, text=True, check=True)
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            label = "adaptive (no flag)" if setting == "adaptive" else f"--max-connections {setting}"
            print(f"| {label} | {measured['batches']} | {measured['seconds']:.0f} |")


if __name__ == "__main__":
    main()
