"""The outcome of a run as plain data: scores per round, the best round, the exit code."""

from __future__ import annotations

import shlex
from dataclasses import asdict

from inspect_tinker.config import Config
from inspect_tinker.tracking import RoundRecord, RunFolder, best_round

EXIT_BAR_MET = 0
EXIT_BAR_NOT_MET = 1


def summarize(
    history: list[RoundRecord], config: Config, folder: RunFolder, *,
    bar_met: bool, wall_seconds: float, peak_memory_mb: float,
) -> dict:
    """Build summary.json's content from the round history and the final decision."""
    best = best_round(history)
    baseline = next((r.score for r in history if r.round == 0), None)
    next_steps = []
    if best is not None and best.round == 0:
        untrained = "meets the bar untrained" if bar_met else "scored best, better than every trained round"
        next_steps.append(f"The base model {config.base_model} {untrained}: use it as it is (there is no adapter to load).")
    elif best is not None and best.adapter.startswith("tinker://"):
        next_steps.append(f"Download the adapter: {shlex.join(['tinker', 'checkpoint', 'download', best.adapter])}")
    elif best is not None:
        next_steps.append(
            f"Load the adapter: PeftModel.from_pretrained(base_model, {best.adapter!r})"
        )
    next_steps.append(f"Browse the evaluation logs: {shlex.join(['inspect', 'view', '--log-dir', str(folder.logs_dir)])}")
    if not bar_met:
        next_steps.append(
            "Below the bar: try more rounds (--set max_rounds=N), more steps per round, "
            "a higher learning rate, or more training data covering the failed questions."
        )
    return {
        "run_dir": str(folder.root),
        "bar_met": bar_met,
        "exit_code": EXIT_BAR_MET if bar_met else EXIT_BAR_NOT_MET,
        "threshold": config.eval_threshold,
        "rounds_run": sum(1 for r in history if r.round > 0),
        "baseline_score": baseline,
        "best_round": best.round if best else None,
        "best_score": best.score if best else (baseline or 0.0),
        "best_adapter": best.adapter if best else None,
        "rounds": [asdict(r) for r in history],
        "wall_seconds": wall_seconds,
        "peak_memory_mb": peak_memory_mb,
        "next_steps": next_steps,
    }
