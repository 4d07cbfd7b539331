"""EvalOps: one test run per training round, as the original tinker-eval-loop submitted them
(the loop's `eval_result` events), and one per finished Inspect task (`task_finished` events of
the `inspect_tinker/evalops` hook, tracking/hooks.py).

`POST {EVALOPS_API_URL}/api/v1/test-runs/` with `Authorization: Bearer {EVALOPS_API_KEY}` and a
body naming the test suite, the round's checkpoint and its metrics. The API is small enough that
a typed client would add nothing (the `evalops-sdk` package holds protobuf types unchecked
against these REST endpoints), so this speaks it with httpx.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from inspect_tinker.tracking.delivery import post_json

DEFAULT_API_URL = "https://api.evalops.dev"


class EvalOpsDestination:
    """Turns each trained round's evaluation, and each finished Inspect evaluation task, into an
    EvalOps test run."""

    name = "evalops"

    def __init__(self, api_url: str, api_key: str, test_suite_id: str, timeout_seconds: float):
        self._url = api_url.rstrip("/") + "/api/v1/test-runs/"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._suite = test_suite_id
        self._client = httpx.Client(timeout=timeout_seconds)
        # What a round's test run reports besides its scores, gathered from the events before it.
        self._run_dir: str | None = None
        self._learning_rate: float | None = None
        self._final_loss: float | None = None
        self._checkpoint: str | None = None

    def payload(self, event: dict) -> tuple[str, dict] | None:
        kind = event["event"]
        if kind == "run_started":
            self._run_dir = event["run_dir"]
        elif kind == "round_started":
            self._learning_rate = event["learning_rate"]
        elif kind == "step":
            self._final_loss = event["loss"]
        elif kind == "checkpoint_saved":
            self._checkpoint = event["path"]
        elif kind == "eval_result" and event["round"] > 0:  # round 0 is the untrained baseline
            return event["id"], self._test_run(event)
        elif kind == "task_finished" and (event["loop"] or {}).get("stage") != "train":  # training is no test
            return event["id"], self._task_test_run(event)
        return None

    def send(self, key: str, payload: dict) -> None:
        post_json(self._client, self._url, payload, key, self._headers)

    def _test_run(self, event: dict) -> dict:
        round_no = event["round"]
        run = Path(self._run_dir).name if self._run_dir else event["run_id"]
        model = Path(self._checkpoint).absolute().as_uri() if self._checkpoint else None
        return {
            "testSuiteId": self._suite,
            "visibility": "private",
            "sharedWithTeams": [],
            "name": f"Training Round {round_no}",
            "description": f"inspect-tinker run {run}, round {round_no}: score {event['score']:.3f}",
            "config": {
                "model": model,
                "metadata": {
                    "source": "inspect-tinker",
                    "run": run,
                    "run_id": event["run_id"],
                    "checkpoint": self._checkpoint,
                    "round": round_no,
                    "metrics": {
                        "score": event["score"],
                        "tasks": {t["name"]: t["score"] for t in event["tasks"]},
                        "final_loss": self._final_loss,
                        "learning_rate": self._learning_rate,
                        **(event.get("usage") or {}),  # tokens trained, prompt and sampled; cost when priced
                    },
                },
            },
            "tags": ["automated", f"round-{round_no}", "inspect-tinker"],
        }

    def _task_test_run(self, event: dict) -> dict:
        """One Inspect task's test run; a loop task's run, round, checkpoint and learning rate go
        into its metadata, and its model is the round's checkpoint."""
        loop = event["loop"] or {}
        task, score = event["task"], event["score"]
        in_loop = {key: loop.get(key) for key in ("run", "round", "checkpoint", "learning_rate", "stage", "role")} if loop else {}
        where = f", round {loop['round']} of run {loop['run']}" if loop else ""
        scored = "no score" if score is None else f"score {score:.3f}"
        return {
            "testSuiteId": self._suite,
            "visibility": "private",
            "sharedWithTeams": [],
            "name": f"{task} ({event['model']}){where}",
            "description": f"inspect eval {task} on {event['model']}{where}: {scored} ({event['status']})",
            "config": {
                "model": loop.get("checkpoint") or event["model"],
                "metadata": {
                    "source": "inspect-tinker", "task": task, "model": event["model"], "eval_id": event["eval_id"],
                    "inspect_run_id": event["inspect_run_id"], "log": event["log"], "status": event["status"],
                    "error": event["error"], **in_loop,
                    "metrics": {"score": score, "scores": event["scores"], "samples": event["samples"]},
                },
            },
            # dict.fromkeys: the task's own tags, in order, without repeating ours (the loop tags its tasks too).
            "tags": list(dict.fromkeys(["automated", "inspect-tinker", *([f"round-{loop['round']}"] if loop else []), *event["tags"]])),
        }
