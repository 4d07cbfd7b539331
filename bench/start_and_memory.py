"""Cold start (seconds from the command to the first training step, model cache warm) and
the demo's peak memory.

    .venv/bin/python bench/start_and_memory.py             # both
    .venv/bin/python bench/start_and_memory.py --no-demo   # cold start only

Cold start runs the demo's configuration without its baseline evaluation (which the demo
does before it trains), reads the run's events as they are written, and stops the run once
the first step's event appears. Milestones are measured from the moment the command is
started: `run_started` (Python, imports and config done), `backend_ready` (model loaded),
`round_started` (the first step begins) and the first `step` event (it ended); and the CPU
seconds the run had used by then (a measure that other processes on a shared machine do
not inflate). The first start also fills the model cache, so it is reported apart and left
out of the median.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

MILESTONES = ("run_started", "backend_ready", "round_started", "step")


def inspect_tinker_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "inspect-tinker"), *args]


def cold_start(workdir: Path, name: str) -> dict[str, float]:
    """Start the demo without baseline; return seconds from the command to each milestone."""
    events = workdir / name / "events.jsonl"
    started = time.time()
    proc = subprocess.Popen(
        inspect_tinker_command("demo", "--output-dir", str(workdir), "--run-name", name, "--set", "baseline_eval=false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    seen: dict[str, float] = {}
    try:
        while "step" not in seen and proc.poll() is None:
            time.sleep(0.05)
            if events.is_file():
                for line in events.read_text().splitlines():
                    e = json.loads(line)
                    if e["event"] in MILESTONES and e["event"] not in seen:
                        seen[e["event"]] = datetime.fromisoformat(e["time"]).timestamp() - started
    finally:
        proc.terminate()
        # wait4 also reports the CPU time the run used, which other processes on the machine do not inflate.
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    seen["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    return seen


def demo_memory(workdir: Path) -> dict:
    """Run the whole demo; return its wall time, exit code and peak resident memory."""
    started = time.time()
    proc = subprocess.run(inspect_tinker_command("demo", "--output-dir", str(workdir), "--run-name", "demo"),
                          capture_output=True, text=True)
    summary = json.loads((workdir / "demo" / "summary.json").read_text())
    return {"exit_code": proc.returncode, "seconds": time.time() - started, "best_score": summary["best_score"],
            "rounds_run": summary["rounds_run"], "peak_memory_mb": summary["peak_memory_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm starts measured after the first")
    parser.add_argument("--no-demo", action="store_true", help="skip the full demo run (peak memory)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="inspect-tinker-start-"))
    try:
        first = cold_start(workdir, "start-0")
        print(json.dumps({"first_start": first, "load_average": os.getloadavg()}), flush=True)
        warm = []
        for i in range(1, args.repeats + 1):
            warm.append(cold_start(workdir, f"start-{i}"))
            print(json.dumps({"start": i, **warm[-1], "load_average": os.getloadavg()[0]}), flush=True)
        median = {m: statistics.median(w[m] for w in warm) for m in (*MILESTONES, "cpu_seconds")}
        print("median seconds from the command: " + ", ".join(f"{m} {s:.1f}" for m, s in median.items()))
        if not args.no_demo:
            print(json.dumps({"demo": demo_memory(workdir), "load_average": os.getloadavg()}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
