"""RL rounds: our loop against tinker-cookbook's rl_loop on a local Tinker server; the local backend's step times.

Our RL round against tinker-cookbook's `recipes/rl_loop.py` on one local Tinker server, and the
local backend's seconds per RL step with where they go.

`--part server` (starts a local server: run it under `flock /work/server.lock` on a shared
machine): one local server (SkyRL 0.4.0, JAX on CPU) with the tiny random Llama serves both
sides in turn, on bench/rl_reward_task.py's length reward (the tiny model's text means nothing, but
its lengths vary, so no group is skipped and both loops do the same work):
- ours: `inspect-tinker run` with `method: rl`, `backend: tinker` (one round of `--steps`
  steps; its evaluation after the round is not counted). Each step: the rollout stage (an
  Inspect eval, epochs = group size, one sample request per group), the scorer, advantages,
  forward_backward(importance_sampling) + optim_step.
- peer: tinker-cookbook 0.6.1's rl_loop.main, in its own environment, on the same prompts per
  step, the same prompt tokens, the same reward, group size, batch, LoRA rank, learning rate,
  max tokens and AdamW settings (bench/_tinker_cookbook_rl_peer.py says what is patched).
The first step of each side is a warm-up (the server compiles per shape) and is not timed;
both reward curves are shown whole. Sampling is seeded on our side and not on the peer's, so
the two curves are two draws of the same noise, not one curve twice.

`--part local`: the RL example's round (examples/rl/config.yaml: the bundled SmolLM2-135M, 8
prompts x 4 completions of at most 24 tokens, LoRA 16) on the local backend, `--local-steps`
steps; per step the wall time and its parts: the rollout stage (of it, the time any model
call was in flight and the time any scorer ran) and the policy step (advantages,
forward_backward_policy, optim_step).

    flock /work/server.lock .venv/bin/python bench/rl.py --part server --steps 4
    OMP_NUM_THREADS=1 .venv/bin/python bench/rl.py --part local --local-steps 2

Results: bench/results/rl-<part>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml
from inspect_ai.log import read_eval_log

from inspect_tinker.loop.rollout import choose_prompts, step_seed
from inspect_tinker.provider.model_api import SAMPLED_TOKENS
from inspect_tinker.provider.tinker_server import LocalTinkerServer, ServerSettings, free_port, served_model
from inspect_tinker.provider.tinker_server.environment import ensure_environment
from inspect_tinker.tracking import RunFolder
from inspect_tinker.tracking.task_metadata import loop_metadata

sys.path.insert(0, str(Path(__file__).parent))
from rl_reward_task import PROMPTS  # noqa: E402
from tinker_server import load, machine  # noqa: E402

HERE = Path(__file__).parent
TASK = HERE / "rl_reward_task.py"
EXAMPLE = HERE.parent / "examples" / "rl"
# Both sides on the server; AdamW as rl_loop sets it (beta2 0.95, eps 1e-8, no clipping).
GROUP, PROMPTS_PER_STEP, RANK, LEARNING_RATE, MAX_TOKENS, SEED = 4, 4, 8, 1e-2, 8, 0  # 16 tokens saturate the reward
RENDERER = "qwen3_instruct"  # the peer's renderer: ChatML, SmolLM2's turn format


def run_loop(config: dict, work: Path) -> Path:
    """`inspect-tinker run` on `config` in `work`; the run folder."""
    work.mkdir(parents=True)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump({**config, "output_dir": str(work / "runs"), "run_name": "bench"}))
    proc = subprocess.run([sys.executable, "-m", "inspect_tinker", "run", "--config", str(path)], cwd=work,
                          capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 1: below the bar, as expected of these short runs
        raise SystemExit(f"inspect-tinker run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return work / "runs" / "bench"


def step_records(run_dir: Path) -> list[dict]:
    """Each RL step's rl_step record, with its wall time: since the step before ended (the round's start for the first)."""
    events = RunFolder(run_dir).read_events()
    start = next(e for e in events if e["event"] == "round_started")["time"]
    steps = []
    for e in (e for e in events if e["event"] == "rl_step"):
        seconds = (datetime.fromisoformat(e["time"]) - datetime.fromisoformat(start)).total_seconds()
        steps.append({**e, "wall_seconds": seconds})
        start = e["time"]
    return steps


def rollout_logs(run_dir: Path) -> dict[int, object]:
    """The rollout stage's log of each step."""
    logs = {}
    for path in (run_dir / "logs").glob("*.eval"):
        log = read_eval_log(str(path))
        entry = loop_metadata(log.eval.metadata)
        if entry["stage"] == "rollout":
            logs[entry["step"]] = log
    return logs


def union_seconds(intervals: list[tuple]) -> float:
    """The time covered by any of `intervals` ((start, end) datetimes)."""
    covered, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            covered, end = covered + (b - a).total_seconds(), b
        elif b > end:
            covered, end = covered + (b - end).total_seconds(), b
    return covered


def generating_and_scoring(log) -> tuple[float, float]:
    """Of a rollout stage: seconds any model call was in flight, and seconds any scorer ran."""
    model, scoring = [], []
    for sample in log.samples:
        opened = {}
        for event in sample.events:
            kind = type(event).__name__
            if kind == "ModelEvent" and event.completed:
                model.append((event.timestamp, event.completed))
            elif kind == "SpanBeginEvent" and event.type == "scorers":
                opened[event.id] = event.timestamp
            elif kind == "SpanEndEvent" and event.id in opened:
                scoring.append((opened.pop(event.id), event.timestamp))
    return union_seconds(model), union_seconds(scoring)


def median_rate(seconds: list[float]) -> dict:
    median = statistics.median(seconds)
    return {"median_step_seconds": round(median, 3), "steps_per_second": round(1 / median, 4),
            "step_seconds": [round(s, 3) for s in seconds]}


def server_part(steps: int, work: Path) -> dict:
    model = served_model("tiny")
    os.environ.setdefault("TINKER_API_KEY", "tml-local")
    questions = [[PROMPTS[i] for i in choose_prompts(len(PROMPTS), PROMPTS_PER_STEP, step_seed(SEED, 1, s))]
                 for s in range(1, steps + 2)]  # the prompts our loop samples at each step, warm-up included
    python = ensure_environment((HERE / "tinker_cookbook_requirements.txt").read_text(), kind="bench-tinker-cookbook")
    server = LocalTinkerServer(ServerSettings(model, free_port(), work / "server", max_lora_adapters=4))
    with server.start():
        run_dir = run_loop({
            "backend": "tinker", "base_model": model.name, "tinker_base_url": server.base_url, "method": "rl",
            "rl": {"tasks": [f"{TASK}@lengthy"], "group_size": GROUP, "prompts_per_step": PROMPTS_PER_STEP,
                   "max_tokens": MAX_TOKENS, "temperature": 1.0, "loss": "importance_sampling"},
            "eval_tasks": [{"task": f"{TASK}@lengthy", "task_args": {"held_out": True}}], "baseline_eval": False,
            "max_rounds": 1, "steps_per_round": steps + 1, "eval_threshold": 1.0, "regression_guard": False,
            "lora_rank": RANK, "learning_rate": LEARNING_RATE, "adam_beta2": 0.95, "adam_eps": 1e-8,
            "max_grad_norm": 0.0, "seed": SEED,
        }, work / "ours")
        ours = step_records(run_dir)
        logs = rollout_logs(run_dir)
        chosen = [sorted(PROMPTS[int(s.id)] for s in logs[k].samples if s.epoch == 1) for k in sorted(logs)]
        assert chosen == [sorted(q) for q in questions], "our loop sampled other prompts than the peer is given"
        prompt_tokens = {PROMPTS[int(s.id)]: s.output.metadata[SAMPLED_TOKENS]["prompt_tokens"]
                         for log in logs.values() for s in log.samples}
        job = {"base_url": server.base_url, "model_folder": str(model.folder), "renderer": RENDERER,
               "task_file": str(TASK), "questions_per_step": questions, "prompt_tokens": prompt_tokens,
               "prompts_per_step": PROMPTS_PER_STEP, "group_size": GROUP, "learning_rate": LEARNING_RATE,
               "lora_rank": RANK, "max_tokens": MAX_TOKENS}
        (work / "job.json").write_text(json.dumps(job))
        subprocess.run([str(python), str(HERE / "_tinker_cookbook_rl_peer.py"), str(work / "job.json"),
                        str(work / "peer.json")], check=True, env={**os.environ, "PYTHONPATH": ""})
        peer = json.loads((work / "peer.json").read_text())["steps"]
    return {
        "server": "SkyRL 0.4.0 Tinker API, JAX backend on CPU, tiny random Llama (2 layers, hidden 64) fp32",
        "settings": {"steps_timed": steps, "warm_up_steps": 1, "group_size": GROUP, "prompts_per_step": PROMPTS_PER_STEP,
                     "lora_rank": RANK, "learning_rate": LEARNING_RATE, "max_tokens": MAX_TOKENS,
                     "loss": "importance_sampling", "reward": "bench/rl_reward_task.py (length / 80 characters)"},
        "ours": {**median_rate([s["wall_seconds"] for s in ours[1:]]),
                 "mean_reward": [round(s["mean_reward"], 4) for s in ours],
                 "groups_skipped": [s["groups_skipped"] for s in ours],
                 "median_sampling_seconds": round(statistics.median(s["sampling_seconds"] for s in ours[1:]), 3),
                 "median_training_seconds": round(statistics.median(s["training_seconds"] for s in ours[1:]), 3)},
        "tinker-cookbook rl_loop": {**median_rate([s["seconds"] for s in peer[1:]]),
                                    "mean_reward": [round(s["mean_reward"], 4) for s in peer]},
    }


def local_part(steps: int, work: Path) -> dict:
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["rl"]["tasks"] = [{**t, "task": str(EXAMPLE / t["task"])} for t in config["rl"]["tasks"]]
    config["eval_tasks"] = [{**t, "task": str(EXAMPLE / t["task"])} for t in config["eval_tasks"]]
    run_dir = run_loop({**config, "max_rounds": 1, "steps_per_round": steps, "baseline_eval": False}, work / "local")
    logs = rollout_logs(run_dir)
    rows = []
    for s in step_records(run_dir):
        generating, scoring = generating_and_scoring(logs[s["step_in_round"]])
        rows.append({"step": s["step"], "wall_seconds": round(s["wall_seconds"], 2),
                     "rollout_seconds": round(s["sampling_seconds"], 2), "of_it_generating": round(generating, 2),
                     "of_it_scoring": round(scoring, 3), "policy_step_seconds": round(s["training_seconds"], 2),
                     "mean_reward": round(s["mean_reward"], 4), "groups_skipped": s["groups_skipped"]})
    rl = config["rl"]
    return {"model": "SmolLM2-135M-Instruct (bundled), local backend, CPU",
            "settings": {"steps": steps, "group_size": rl["group_size"], "prompts_per_step": rl["prompts_per_step"],
                         "max_tokens": config["generation"]["max_tokens"], "lora_rank": config["lora_rank"],
                         "task": "examples/rl/terse.py@terse_train"},
            "median_step_seconds": statistics.median(r["wall_seconds"] for r in rows), "steps": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["server", "local", "both"], default="both")
    parser.add_argument("--steps", type=int, default=6, help="timed RL steps per side on the server (after one warm-up)")
    parser.add_argument("--local-steps", type=int, default=3, help="RL steps on the local backend")
    parser.add_argument("--out", type=Path, help="default: bench/results/rl-<part>.json")
    args = parser.parse_args()
    args.out = args.out or HERE / "results" / f"rl-{args.part}.json"
    work = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    record = {"machine": machine(), "load_average_before": load(),
              "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}  # torch's threads in the runs it starts
    if args.part in ("server", "both"):
        record["server"] = server_part(args.steps, work)
    if args.part in ("local", "both"):
        record["local"] = local_part(args.local_steps, work)
    record["load_average_after"] = load()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    sys.exit(main())
