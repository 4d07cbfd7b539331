"""What a run's report shows, read from its folder into plain data (no rendering here).

Everything comes from the run folder: config.json, events.jsonl, state.json and, once the run
has finished, summary.json. A running or crashed run has no summary; the report then shows
what exists. Events from newer versions carry fields this module does not know: they are
kept and shown as they are, never an error.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from inspect_tinker.evals.paired import compare_paired
from inspect_tinker.report.runs import RunRow, run_row
from inspect_tinker.tracking import RunFolder

# Events that the report shows in their own sections; every other kind (but progress ticks)
# is listed under "Run events" so that nothing a run recorded goes unseen.
SHOWN_ELSEWHERE = {
    "step", "eval_result", "decision", "round_started", "round_trained", "checkpoint_saved",
    "partial_checkpoint_saved", "data_prepared", "backend_ready", "run_finished", "report_written", "data_added",
    "data_refused",
}
# Tasks besides the gating ones: a confirmation task is reported and never gates; the
# regression guard watches what the base model knew before training.
ROLE_LABEL = {"confirm": "confirmation", "guard": "regression guard"}
ENVELOPE = ("event", "seq", "time", "id", "run_id")
Z_95 = 1.959964  # two-sided 95 % quantile of the normal distribution


@dataclass
class RoundRow:
    round: int  # 0 is the untrained baseline
    score: float | None  # None: trained, not evaluated yet
    low: float | None  # 95 % interval of the score, when the tasks report a standard error
    high: float | None
    tasks: list[dict]  # name, score, stderr, n_correct, n_samples of each task
    learning_rate: float | None
    final_loss: float | None
    decision: dict | None  # the decision event of the round, when it was decided
    trained: dict | None  # the round_trained event: seconds, tokens_per_second, pad_fraction (newer runs)
    usage: dict | None = None  # what the round used (RoundUsage's fields), from its eval_result event (newer runs)
    best: bool = False
    # Per task evaluated in this round and the one evaluated before: task, role, compared_with,
    # fixed, broke (sample counts) and evals/paired.py's statistics over the samples both evaluated.
    since_previous: list[dict] = field(default_factory=list)


@dataclass
class SampleCell:
    correct: bool
    answer: str
    change: str | None  # "fixed" (wrong in the round before, right now) or "broke" (the reverse)


@dataclass
class SampleRow:
    task: str
    id: str
    question: str
    expected: str
    cells: dict[int, SampleCell] = field(default_factory=dict)  # by round


@dataclass
class ReportContents:
    run: RunRow  # status, scores, best round and adapter, wall time: as `inspect-tinker runs` shows them
    generated: str  # ISO time the report was made
    config: dict
    summary: dict | None
    backend: dict | None  # the backend_ready event's info: device, dtype, parameter counts
    threshold: float | None
    rounds: list[RoundRow]
    intervals_recorded: bool  # the evaluations recorded their intervals (else they come from standard errors)
    steps: list[dict]  # one per optimizer step that counts: step, round, loss, learning_rate
    samples: list[SampleRow]
    data: dict | None  # the data report: data_report.json when the run saved one, else the data_prepared event
    dropped: dict[str, int]  # records dropped, by reason (only reasons that dropped any)
    contamination_hits: list[dict]  # training records that matched an evaluation sample
    duplicate_clusters: list[dict]
    decisions: list[dict]
    additions: list[dict]  # training records data selection added or repeated: round, where, task, sample_id, reason
    refusals: list[dict]  # pool records the relevance floor refused: round, where, task, sample_id, score, why
    other_events: list[dict]  # time, event, details


def read_report_contents(run_dir: Path) -> ReportContents:
    """Read the run folder at `run_dir` into ReportContents; UsageError when it is not a run folder."""
    folder = RunFolder.open(run_dir)
    events = folder.read_events()
    state = folder.read_state()
    summary = folder.read_summary()
    config = folder.read_config()
    run = run_row(folder, events, state)

    evals = _last_by_round(events, "eval_result")
    decisions = _last_by_round(events, "decision")
    trained = _last_by_round(events, "round_trained")
    steps = _steps(events)
    history = {r.round: r for r in (state.history if state else [])}
    changes = _since_previous(evals)
    rounds = []
    for n in sorted(set(evals) | set(history) | {s["round"] for s in steps if s["round"] is not None}):
        ev, rec = evals.get(n, {}), history.get(n)
        tasks = [{k: v for k, v in t.items() if k != "samples"} for t in ev.get("tasks", [])]
        score = rec.score if rec is not None else ev.get("score")
        low, high = (ev["ci_low"], ev["ci_high"]) if ev.get("ci_low") is not None else _interval(score, tasks)
        round_steps = [s for s in steps if s["round"] == n]
        rounds.append(RoundRow(
            round=n, score=score, low=low, high=high, tasks=tasks,
            learning_rate=rec.learning_rate if rec else (round_steps[-1]["learning_rate"] if round_steps else None),
            final_loss=rec.final_loss if rec else (round_steps[-1]["loss"] if round_steps else None),
            decision=decisions.get(n), trained=trained.get(n), usage=ev.get("usage"), best=n == run.best_round,
            since_previous=changes.get(n, []),
        ))

    backend = _last(events, "backend_ready")
    return ReportContents(
        run=run, generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config, summary=summary, backend=backend.get("info") if backend else None,
        threshold=(summary or config).get("threshold", config.get("eval_threshold")),
        rounds=rounds, intervals_recorded=any(e.get("ci_low") is not None for e in evals.values()),
        steps=steps, samples=_samples(evals),
        **_data_report(folder, _last(events, "data_prepared")),
        decisions=[decisions[n] for n in sorted(decisions)],
        additions=[_fields(e) for e in events if e.get("event") == "data_added"],
        refusals=[_fields(e) for e in events if e.get("event") == "data_refused"],
        other_events=[
            {"time": e.get("time", ""), "event": e.get("event"),
             "details": {k: v for k, v in _fields(e).items() if k != "config"}}  # run_started's config: below
            for e in events if not _shown_elsewhere(str(e.get("event")))
        ],
    )


def _shown_elsewhere(kind: str) -> bool:
    return kind in SHOWN_ELSEWHERE or kind.endswith("_progress")  # progress ticks are for the console


def _data_report(folder: RunFolder, event: dict | None) -> dict:
    """The data report's fields of ReportContents from the data_prepared event, or from the full
    report file the event points to when there is one."""
    if event is None:
        return {"data": None, "dropped": {}, "contamination_hits": [], "duplicate_clusters": []}
    data = _fields(event)
    saved = folder.root / Path(str(data.get("report", ""))).name if data.get("report") else None
    if saved is not None and saved.is_file():
        data = json.loads(saved.read_text())
    if isinstance(data.get("dropped"), dict):
        dropped = {reason: n for reason, n in data["dropped"].items() if n}
    else:  # older runs list each invalid record with its reason
        dropped = dict(Counter(d.get("reason", "?") for d in data.get("invalid", [])))
        if data.get("dropped_too_long"):
            dropped["nothing left to train on after cutting to max_seq_length"] = data["dropped_too_long"]
    contamination = data.get("contamination")
    hits = contamination.get("hits") if isinstance(contamination, dict) else None
    return {
        "data": data,
        "dropped": dropped,
        "contamination_hits": hits if isinstance(hits, list) else data.get("contamination_hits", []),
        "duplicate_clusters": data["duplicate_clusters"] if isinstance(data.get("duplicate_clusters"), list) else [],
    }


def _fields(event: dict) -> dict:
    """What the event says, without its envelope (kind, sequence number, time, ids)."""
    return {k: v for k, v in event.items() if k not in ENVELOPE}


def _last(events: list[dict], kind: str) -> dict | None:
    return next((e for e in reversed(events) if e.get("event") == kind), None)


def _last_by_round(events: list[dict], kind: str) -> dict[int, dict]:
    # A round evaluated again after a resume counts with its last result.
    return {e["round"]: e for e in events if e.get("event") == kind and "round" in e}


def _steps(events: list[dict]) -> list[dict]:
    """The steps that count, in order. A resumed run goes back to its last durable point and
    trains again from there: the steps a stopped session had recorded past that point were
    lost with it, and the replayed ones replace them."""
    steps: list[dict] = []
    for e in events:
        if e.get("event") != "step" or not isinstance(e.get("step"), int):
            continue
        while steps and steps[-1]["step"] >= e["step"]:
            steps.pop()
        steps.append({"step": e["step"], "round": e.get("round"), "loss": e.get("loss"),
                      "learning_rate": e.get("learning_rate")})
    return steps


def _interval(score: float | None, tasks: list[dict]) -> tuple[float | None, float | None]:
    """For runs whose evaluations recorded no interval: a 95 % normal interval of the mean of
    task scores from Inspect's per-task standard errors."""
    errors = [t.get("stderr") for t in tasks]
    if score is None or not errors or any(e is None for e in errors):
        return None, None
    se = math.sqrt(sum(e * e for e in errors)) / len(errors)  # tasks are independent samples
    return max(0.0, score - Z_95 * se), min(1.0, score + Z_95 * se)


def _since_previous(evals: dict[int, dict]) -> dict[int, list[dict]]:
    """Each evaluated round against the one evaluated before it, task by task, paired on the samples
    both evaluated (by id and epoch). Computed from the recorded samples, so runs recorded before
    evaluations carried their paired comparison show it too."""
    def values(task: dict) -> dict[tuple[str, int], float]:
        return {(str(s["id"]), s.get("epoch", 1)): float(s["value"]) for s in task.get("samples", [])}

    rounds = sorted(evals)
    out: dict[int, list[dict]] = {}
    for before, after in zip(rounds, rounds[1:]):
        earlier = {t["name"]: t for t in evals[before].get("tasks", [])}
        out[after] = []
        for task in evals[after].get("tasks", []):
            if task["name"] in earlier:
                paired = compare_paired(values(earlier[task["name"]]), values(task))
                out[after].append({"task": task["name"], "role": task.get("role", "gate"), "compared_with": before,
                                   "fixed": len(paired.fixed), "broke": len(paired.broke), **paired.statistics()})
    return out


def _samples(evals: dict[int, dict]) -> list[SampleRow]:
    """Every evaluation sample with its result in each round, and its change since the evaluation before."""
    rows: dict[tuple[str, str], SampleRow] = {}
    for n in sorted(evals):
        for task in evals[n].get("tasks", []):
            recorded = "fixed" in task  # evaluations that record their own fixed/broke lists
            fixed, broke = set(map(str, task.get("fixed", []))), set(map(str, task.get("broke", [])))
            for s in task.get("samples", []):
                sample_id = str(s["id"])
                row = rows.setdefault(
                    (task["name"], sample_id),
                    SampleRow(task["name"], sample_id, s.get("question", ""), s.get("expected", "")),
                )
                if recorded:
                    change = "fixed" if sample_id in fixed else ("broke" if sample_id in broke else None)
                else:
                    before = row.cells[max(row.cells)].correct if row.cells else None
                    change = None if before is None or before == s["correct"] else ("fixed" if s["correct"] else "broke")
                row.cells[n] = SampleCell(bool(s["correct"]), s.get("answer", ""), change)
    task_order = {task: i for i, task in enumerate(dict.fromkeys(task for task, _ in rows))}
    return sorted(rows.values(), key=lambda row: task_order[row.task])  # stable: samples keep their order
