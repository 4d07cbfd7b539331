"""Our tinker backend against tinker-cookbook 0.6.1 on one local Tinker server, side by side.

One local server (SkyRL 0.4.0, JAX on CPU) with the bundled model serves both sides in turn:
- training: the demo's training examples, rendered once by inspect-tinker, in batches of 8, LoRA
  rank 16, `--steps` optimizer steps each after one uncounted warm-up step (the server
  compiles per shape). Ours: TinkerBackend.forward_backward + optim_step (both submitted, then
  awaited). Peer: the cookbook's `recipes/sl_loop.py` main loop, in its own environment,
  fed the same Datums (bench/_tinker_cookbook_peer.py).
- sampling: the demo's 24 evaluation questions, greedy, 24 tokens, all requests in flight,
  on each side's trained weights, after one uncounted pass of the same requests (the first
  pass compiles: seen 205 s against 36 s for the side that came second). Ours: the backend's TinkerSampler, one request per prompt; peer: the cookbook's Inspect
  model API (`InspectAPIFromTinkerSampling.generate`), with the same prompt tokens.

    .venv/bin/python bench/tinker_server.py --steps 6

The peer's environment (bench/tinker_cookbook_requirements.txt) is installed into the user
cache on first use, like the server's. Results: bench/results/tinker-server.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from inspect_tinker.config import load_config
from inspect_tinker.data.records import InvalidRecord, record_to_conversation
from inspect_tinker.data.render import render_conversation
from inspect_tinker.demo import DEMO_CONFIG
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import create_backend
from inspect_tinker.provider.backend import SamplingParams
from inspect_tinker.provider.tinker_server import LocalTinkerServer, ServerSettings, free_port, served_model
from inspect_tinker.provider.tinker_server.environment import ensure_environment

HERE = Path(__file__).parent
BATCH, RANK, LEARNING_RATE, MAX_TOKENS = 8, 16, 1e-3, 24
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # SmolLM2's default, stated
EVAL_FILES = ("eval.jsonl", "more_facts.jsonl", "confirm.jsonl")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def demo_conversations(path: Path) -> list:
    """The demo's valid training records as conversations (its file plants two broken lines)."""
    conversations = []
    for line in path.read_text().splitlines():
        try:
            conversations.append(record_to_conversation(json.loads(line)))
        except (ValueError, InvalidRecord):
            continue
    return conversations


def step_batches(examples: list, steps: int) -> list[list]:
    """The batches of `steps` steps, cycling through the examples."""
    flat = [examples[i % len(examples)] for i in range(steps * BATCH)]
    return [flat[i:i + BATCH] for i in range(0, len(flat), BATCH)]


def ours(server: LocalTinkerServer, batches: list[list], prompts: list[list[int]], workdir: Path) -> dict:
    (workdir / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (workdir / "eval.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    (workdir / "config.yaml").write_text(yaml.safe_dump({
        "backend": "tinker", "base_model": server.settings.model.name, "tinker_base_url": server.base_url,
        "train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"], "lora_rank": RANK,
        "learning_rate": LEARNING_RATE, "regression_guard": False,
    }))
    backend = create_backend(backend_settings(load_config(workdir / "config.yaml")))
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        backend.forward_backward(batch).loss
        backend.optim_step(LEARNING_RATE)
        seconds.append(time.perf_counter() - start)
    sample_all(backend, prompts)  # warm-up, uncounted: the server compiles sampling per shape
    start = time.perf_counter()
    sequences = sample_all(backend, prompts)
    wall = time.perf_counter() - start
    return {"step_seconds": seconds[1:], "sampling": {
        "wall_seconds": wall, "samples": len(sequences), "output_tokens": sum(len(s.tokens) for s in sequences)}}


def sample_all(backend, prompts: list[list[int]]) -> list:
    """One greedy sequence per prompt from the backend's current weights, all requests in flight."""
    sampler = backend.sampler()
    params = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, stop_tokens=backend.renderer.stop_tokens)

    async def every_prompt():
        return await asyncio.gather(*(sampler.sample_async(p, 1, params) for p in prompts))

    return [sequence for [sequence] in asyncio.run(every_prompt())]


def peer(server: LocalTinkerServer, batches: list[list], questions: list[str], prompts: list[list[int]],
         workdir: Path) -> dict:
    python = ensure_environment((HERE / "tinker_cookbook_requirements.txt").read_text(), kind="bench-tinker-cookbook")
    examples = [e for batch in batches for e in batch]
    job = {
        "base_url": server.base_url, "model_folder": str(server.settings.model.folder), "renderer": "qwen3_instruct",
        "batch_size": BATCH, "lora_rank": RANK, "learning_rate": LEARNING_RATE, "steps": len(batches) - 1,
        "examples": [{"tokens": e.input_ids, "weights": [float(m) for m in e.loss_mask]} for e in examples],
        "system": SYSTEM, "questions": questions, "prompts": prompts, "max_tokens": MAX_TOKENS,
    }
    (workdir / "job.json").write_text(json.dumps(job))
    subprocess.run([str(python), str(HERE / "_tinker_cookbook_peer.py"), str(workdir / "job.json"),
                    str(workdir / "peer.json")], check=True, env={**os.environ, "PYTHONPATH": ""})
    return json.loads((workdir / "peer.json").read_text())


def summary(side: dict, batches: list[list]) -> dict:
    seconds = side["step_seconds"]
    tokens = statistics.mean(sum(e.n_target_tokens for e in b) for b in batches[1:])
    median = statistics.median(seconds)
    s = side["sampling"]
    return {"steps": len(seconds), "median_step_seconds": round(median, 3), "steps_per_second": round(1 / median, 4),
            "trained_tokens_per_second": round(tokens / median, 1),
            "sampling_wall_seconds": round(s["wall_seconds"], 2),
            "samples_per_second": round(s["samples"] / s["wall_seconds"], 3),
            "output_tokens_per_second": round(s["output_tokens"] / s["wall_seconds"], 1),
            **({"same_prompt_tokens": s["same_prompt_tokens"]} if "same_prompt_tokens" in s else {}),
            "step_seconds": [round(x, 3) for x in seconds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="counted optimizer steps per side")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tinker-server.json")
    args = parser.parse_args()
    os.environ.setdefault("TINKER_API_KEY", "tml-local")
    model = served_model("bundled")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model.folder)
    demo = DEMO_CONFIG.parent
    examples = [render_conversation(tokenizer, [{"role": "system", "content": SYSTEM}, *c], 256)
                for c in demo_conversations(demo / "train.jsonl")]
    batches = step_batches(examples, args.steps + 1)
    questions = [json.loads(line)["question"] for f in EVAL_FILES for line in (demo / f).read_text().splitlines()]
    prompts = [tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                                             add_generation_prompt=True)["input_ids"] for q in questions]
    work = Path(tempfile.mkdtemp(prefix="bench-tinker-"))
    load_before = load()
    server = LocalTinkerServer(ServerSettings(model, free_port(), work / "server", max_lora_adapters=4))
    with server.start():
        results = {"ours": summary(ours(server, batches, prompts, work), batches),
                   "tinker-cookbook sl_loop + InspectAPIFromTinkerSampling": summary(
                       peer(server, batches, questions, prompts, work), batches)}
    record = {"machine": machine(), "load_average_before": load_before, "load_average_after": load(),
              "server": "SkyRL 0.4.0 Tinker API, JAX backend on CPU, SmolLM2-135M-Instruct fp32",
              "settings": {"batch": BATCH, "lora_rank": RANK, "steps": args.steps, "max_tokens": MAX_TOKENS,
                           "questions": len(questions)}, **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    sys.exit(main())
