"""The console's word on what a round changed: the samples fixed and broken and the paired comparison."""

from io import StringIO

from evalresults import eval_result, task_result
from rich.console import Console

from inspect_tinker.evals.history import mark_changes
from inspect_tinker.tracking.console import ConsoleSink


def test_an_evaluation_prints_its_paired_comparison_with_the_round_before():
    before = eval_result(task_result("facts", [False] * 9 + [True]))
    after = eval_result(task_result("facts", [True] * 9 + [False]))
    mark_changes(after, before, previous_round=1)
    sink = ConsoleSink(Console(file=StringIO(), width=400))
    sink.handle({"event": "eval_result", "round": 2, "seconds": 1.0, **after.to_dict()})
    [line] = [line for line in sink.console.file.getvalue().splitlines() if "since round 1" in line]
    # 9 fixed against 1 broken: McNemar's exact p is 2 * 11 / 1024.
    assert "fixed 9 (s0, s1, s2, s3, s4, s5, s6, s7 and 1 more); broke 1 (s9)" in line
    assert "+0.80 on 10 shared samples" in line and "McNemar exact p = 0.0215" in line


def test_the_summary_table_shows_each_rounds_paired_change_of_the_gating_tasks():
    sink = ConsoleSink(Console(file=StringIO(), width=400))
    change = {"task": "facts", "role": "gate", "compared_with": 0, "fixed": ["s0", "s1"], "broke": [], "n": 4,
              "before": 0.25, "after": 0.75, "difference": 0.5, "ci_low": -0.04, "ci_high": 0.81, "p_value": 0.5}
    rounds = [{"round": 0, "learning_rate": None, "final_loss": None, "score": 0.25, "since_previous": []},
              {"round": 1, "learning_rate": 1e-3, "final_loss": 0.5, "score": 0.75, "since_previous": [change]}]
    sink.handle({"event": "run_finished", "rounds": rounds, "best_round": 1, "bar_met": False, "best_score": 0.75,
                 "threshold": 0.9, "rounds_run": 1, "wall_seconds": 3.0, "peak_memory_mb": 100.0, "best_adapter": None,
                 "run_dir": "runs/x", "next_steps": []})
    assert "facts: +0.50 on 4 shared samples (95% CI -0.04 to +0.81, McNemar exact p = 0.5), fixed 2, broke 0" in (
        sink.console.file.getvalue())
