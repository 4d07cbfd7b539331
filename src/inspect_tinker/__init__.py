"""inspect-tinker: train a LoRA adapter in rounds until your evaluation passes the bar.

    from inspect_tinker import load_config, run, run_eval
    summary = run(load_config(Path("config.yaml")))
    checked = run_eval(load_config(Path("config.yaml")), adapter=Path(summary["best_adapter"]))

    from inspect_tinker import qa_grader          # the demo's QA grader, for any Inspect task
    Task(dataset=..., solver=generate(), scorer=qa_grader())
"""

from inspect_tinker.errors import UsageError

__all__ = ["Config", "UsageError", "list_runs", "load_config", "qa_grader", "run", "run_eval", "sync_outbox", "write_report"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Loaded on first use: importing the package (or one part of it, such as a backend in a
    # benchmark or on a GPU worker) loads no pydantic, Inspect AI or torch.
    if name in ("Config", "load_config"):
        from inspect_tinker import config

        return getattr(config, name)
    if name == "run":
        from inspect_tinker.loop.session import run

        return run
    if name == "run_eval":
        from inspect_tinker.loop.evaluation import run_eval

        return run_eval
    if name == "qa_grader":
        from inspect_tinker.evals.scorers import qa_grader

        return qa_grader
    if name == "sync_outbox":
        from inspect_tinker.tracking.sinks import sync_outbox

        return sync_outbox
    if name == "list_runs":
        from inspect_tinker.report.runs import list_runs

        return list_runs
    if name == "write_report":
        from inspect_tinker.report.html import write_report

        return write_report
    raise AttributeError(f"module 'inspect_tinker' has no attribute {name!r}")
