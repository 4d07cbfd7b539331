"""The outcome of a run as plain data: scores per round, the best round, the exit code."""

from __future__ import annotations

import shlex
from dataclasses import asdict

from inspect_tinker.config import Config
from inspect_tinker.errors import ExitCode
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.policies import best_round
from inspect_tinker.tracking import RoundRecord, RunFolder


def summarize(
    history: list[RoundRecord], config: Config, folder: RunFolder, *,
    bar_met: bool, wall_seconds: float, peak_memory_mb: float, evaluations: dict[int, EvalResult] | None = None,
) -> dict:
    """Build summary.json's content from the round history, the final decision and the run's
    `evaluations` by round (for each round's paired comparison with the evaluation before it)."""
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
        "exit_code": int(ExitCode.BAR_MET if bar_met else ExitCode.BAR_NOT_MET),
        "threshold": config.eval_threshold,
        "rounds_run": sum(1 for r in history if r.round > 0),
        "baseline_score": baseline,
        "best_round": best.round if best else None,
        "best_score": best.score if best else (baseline or 0.0),
        "best_adapter": best.adapter if best else None,
        "rounds": [{**asdict(r), "since_previous": since_previous((evaluations or {}).get(r.round))} for r in history],
        # What the run used, in the units the Tinker service bills (RoundUsage), and its cost when priced.
        "tokens_trained": sum(r.tokens_trained for r in history),
        "tokens_prefilled": sum(r.tokens_prefilled for r in history),
        "tokens_sampled": sum(r.tokens_sampled for r in history),
        "total_cost": history[-1].total_cost if history else None,
        "wall_seconds": wall_seconds,
        "peak_memory_mb": peak_memory_mb,
        "next_steps": next_steps,
    }


def since_previous(result: EvalResult | None) -> list[dict]:
    """What an evaluation changed since the one before it, task by task: the round compared with,
    the samples fixed and broken, and the paired comparison (evals/paired.py's statistics)."""
    return [
        {"task": t.name, "role": t.role, "compared_with": t.compared_with, "fixed": t.fixed, "broke": t.broke, **t.paired}
        for t in (result.tasks if result else []) if t.paired is not None
    ]
