"""`inspect-tinker compare A B`: two evaluations of the same samples, paired (evals/paired.py).

Each side is an Inspect log file (`.eval` or `.json`, any task, from any `inspect eval`) or a run
folder, which stands for the Inspect logs of one of its evaluations: its best round unless a round
is named. Samples are matched on task name, sample id and epoch; unscored samples (a judge's
unreadable grade) are left out, as Inspect leaves them out of every metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inspect_tinker.errors import UsageError
from inspect_tinker.evals.paired import PairedComparison, compare_paired

SampleKey = tuple[str, str, int]  # task, sample id, epoch


@dataclass
class Evaluation:
    """One side of a comparison: what it is (for the output) and its scored samples' values."""

    label: str
    values: dict[SampleKey, float]

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(task for task, _, _ in self.values))


def read_evaluation(path: Path, round_no: int | None = None) -> Evaluation:
    """The evaluation at `path`: an Inspect log file, or a run folder's round `round_no` (None: its
    best round, else its last evaluated one). UsageError, saying what to pass, for anything else."""
    if path.is_dir():
        return _run_evaluation(path, round_no)
    if round_no is not None:
        raise UsageError(f"{path}: a round is chosen only for a run folder; an Inspect log holds one evaluation.")
    if not path.is_file():
        raise UsageError(f"{path}: no such file or folder; give an Inspect log (.eval or .json) or a run folder.")
    return Evaluation(str(path), _log_values(path))


@dataclass
class Comparison:
    """B against A: per task both evaluated, and over all their shared samples (`overall`, None
    unless several tasks are shared)."""

    a: Evaluation
    b: Evaluation
    tasks: dict[str, PairedComparison]
    overall: PairedComparison | None

    def lines(self, limit: int = 20) -> list[str]:
        """In words: for each task, the scores on the shared samples, the difference with its 95 %
        interval and p-value, and the samples fixed and broken (at most `limit` named)."""
        lines = [f"A: {self.a.label}", f"B: {self.b.label}"]
        for task, c in self.tasks.items():
            lines.append(_line(task, c))
            lines += [f"  {word} {len(keys)}{': ' if keys else ''}{_names(keys, limit)}"
                      for word, keys in (("fixed", c.fixed), ("broke", c.broke))]
        if self.overall is not None:
            lines.append(_line("all tasks", self.overall))
        return lines

    def to_dict(self) -> dict:
        """JSON-ready (`compare --json`)."""
        def entry(c: PairedComparison) -> dict:
            ids = lambda keys: [{"task": t, "id": i, "epoch": e} for t, i, e in keys]
            return {**c.statistics(), "fixed": ids(c.fixed), "broke": ids(c.broke)}

        return {"a": self.a.label, "b": self.b.label, "tasks": {t: entry(c) for t, c in self.tasks.items()},
                "overall": entry(self.overall) if self.overall else None}


def compare_evaluations(a: Evaluation, b: Evaluation) -> Comparison:
    """B against A on the samples both scored; UsageError when they share none."""
    tasks = {task: compare_paired(_of_task(a.values, task), _of_task(b.values, task)) for task in b.tasks if task in a.tasks}
    tasks = {task: c for task, c in tasks.items() if c.n}
    if not tasks:
        raise UsageError(
            f"{a.label} and {b.label} share no sample (matched on task, sample id and epoch): A has task(s) "
            f"{', '.join(a.tasks) or 'none scored'}, B {', '.join(b.tasks) or 'none scored'}; compare evaluations of the same task."
        )
    return Comparison(a, b, tasks, compare_paired(a.values, b.values) if len(tasks) > 1 else None)


def _line(name: str, c: PairedComparison) -> str:
    return (f"{name}: {c.n} shared samples, {c.before:.3f} -> {c.after:.3f}, difference {c.difference:+.3f} "
            f"(95% CI {c.ci_low:+.3f} to {c.ci_high:+.3f}), McNemar exact p = {c.p_value:.3g}")


def _of_task(values: dict[SampleKey, float], task: str) -> dict[SampleKey, float]:
    return {k: v for k, v in values.items() if k[0] == task}


def _names(keys: list[SampleKey], limit: int) -> str:
    shown = [i if e == 1 else f"{i} (epoch {e})" for _, i, e in keys[:limit]]
    return ", ".join(shown) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _log_values(path: Path) -> dict[SampleKey, float]:
    from inspect_ai.log import read_eval_log

    from inspect_tinker.evals.runner import sample_result

    try:
        log = read_eval_log(str(path))
    except Exception as err:  # Inspect raises whatever its parser met: a zip, JSON or schema error
        raise UsageError(f"{path}: not an Inspect log ({err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                         "give a .eval or .json file that `inspect eval` wrote, or a run folder.") from err
    if not log.samples:
        raise UsageError(f"{path}: this Inspect log has no samples (status {log.status}); compare logs of finished evaluations.")
    values = {}
    for sample in log.samples:
        if not sample.scores:
            continue  # not scored (an eval stopped before scoring)
        result = sample_result(log.eval.task, sample)
        if result.scored:
            values[(log.eval.task, result.id, result.epoch)] = result.value
    return values


def _run_evaluation(path: Path, round_no: int | None) -> Evaluation:
    from inspect_tinker.report.runs import run_row
    from inspect_tinker.tracking import RunFolder

    folder = RunFolder.open(path)
    events = folder.read_events()
    evals = {e["round"]: e for e in events if e.get("event") == "eval_result"}  # a round redone: its last
    if not evals:
        raise UsageError(f"{path}: this run has evaluated nothing yet; compare it once a round is evaluated.")
    if round_no is None:
        best = run_row(folder, events, folder.read_state()).best_round
        round_no = best if best in evals else max(evals)
    elif round_no not in evals:
        raise UsageError(f"{path}: no evaluation of round {round_no}; it evaluated round(s) {', '.join(map(str, sorted(evals)))}.")
    values: dict[SampleKey, float] = {}
    for task in evals[round_no]["tasks"]:
        log = Path(task["log_path"].removeprefix("file://"))
        if not log.is_file():
            raise UsageError(f"{path}: round {round_no}'s Inspect log of task {task['name']} is gone ({log}); "
                             "compare another round, or the logs themselves.")
        values.update(_log_values(log))
    return Evaluation(f"{path} (round {round_no})", values)
