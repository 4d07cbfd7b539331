"""Evaluation throughput on the bundled model: the `tinker` provider against two peers.

Same model (SmolLM2-135M-Instruct, fp32), same questions, greedy, same max_tokens:

- sequential: transformers `generate`, one question at a time (what an eval loop without
  batching does);
- hf/: Inspect's built-in Hugging Face provider (batched; `do_sample=False`), through `inspect_ai.eval`;
- tinker/ -M backend=local: our provider as `inspect eval --model tinker/SmolLM2-135M-Instruct
  -M backend=local` builds it (left-padded batches gathered from Inspect's concurrent samples),
  through `inspect_ai.eval`;
- tinker/ over the loop's backend: the same provider over the training backend's sampler, as
  the loop evaluates a round (the LoRA adapter unmerged: a fresh one, so the base model's answers);
- sampler direct: the standalone sampler's batches called without Inspect, to show what Inspect adds.

Questions: the demo's evaluation files and the regression guard (44 questions).
Run: .venv/bin/python bench/eval_throughput.py [--batch-size 16] [--max-tokens 24] [--repeat 3]
Every measurement runs in a fresh process that first answers every question once untimed
(the same warm-up for all: kernels, caches, and the lazy set-up of a process's first Inspect
eval), then once timed. The methods are interleaved (one of each, `--repeat` times over), so
a change in the machine's load spreads over all of them; medians are reported. Prints one
table (seconds, questions/s, new tokens/s, speed-up over sequential and over hf/, answers
identical to the sequential ones). Results are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hf/ provider would otherwise look the model up on the hub
os.environ.setdefault("INSPECT_EVAL_CTL_SERVER", "false")

import inspect_ai  # noqa: E402
import torch  # noqa: E402
from inspect_ai.model import GenerateConfig, get_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from inspect_tinker.config import load_config  # noqa: E402
from inspect_tinker.demo import DEMO_CONFIG  # noqa: E402
from inspect_tinker.evals.general_knowledge import QUESTIONS as GUARD_QUESTIONS  # noqa: E402
from inspect_tinker.evals.qa import qa  # noqa: E402
from inspect_tinker.loop.settings import backend_settings  # noqa: E402
from inspect_tinker.provider.base_model import BUNDLED_MODEL_NAME, resolve_base_model  # noqa: E402
from inspect_tinker.provider.backend import SamplingParams  # noqa: E402
from inspect_tinker.provider.local_backend import LocalBackend  # noqa: E402
from inspect_tinker.provider.model_api import backend_model  # noqa: E402
from inspect_tinker.provider.open_model import open_model  # noqa: E402
from inspect_tinker.provider.precision import cpu_model_name  # noqa: E402

DEMO = DEMO_CONFIG.parent
QUESTION_FILES = [DEMO / "eval.jsonl", DEMO / "more_facts.jsonl", DEMO / "confirm.jsonl", GUARD_QUESTIONS]


def load_questions() -> list[str]:
    return [json.loads(line)["question"] for f in QUESTION_FILES for line in f.read_text().splitlines() if line.strip()]


def prompt_ids(tokenizer, question: str) -> list[int]:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)
    return list(rendered["input_ids"] if hasattr(rendered, "keys") else rendered)


def sequential(model, tokenizer, questions: list[str], max_tokens: int) -> list[str]:
    answers = []
    for q in questions:
        ids = torch.tensor([prompt_ids(tokenizer, q)])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return answers


def sampler_direct(opened, questions: list[str], max_tokens: int, batch_size: int) -> list[str]:
    tokenizer = opened.tokenizer
    prompts = [prompt_ids(tokenizer, q) for q in questions]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop_tokens=opened.renderer.stop_tokens)
    answers = []
    for i in range(0, len(prompts), batch_size):
        for [s] in opened.sampler.generate(prompts[i : i + batch_size], 1, params):
            tokens = s.tokens[:-1] if s.stop_reason == "stop" else s.tokens
            answers.append(tokenizer.decode(tokens, skip_special_tokens=True).strip())
    return answers


def through_inspect(model, task_file: Path, log_dir: Path, max_tokens: int, batch_size: int) -> list[str]:
    [log] = inspect_ai.eval(
        qa(path=str(task_file), name="bench"), model=model, log_dir=str(log_dir), display="none",
        log_level="error", max_connections=batch_size, max_samples=batch_size, max_tokens=max_tokens,
        temperature=0.0, score_display=False,
    )
    by_id = {int(s.id): s.output.completion.strip() for s in log.samples}
    return [by_id[i] for i in sorted(by_id)]


def timed(fn):
    t0 = time.perf_counter()
    answers = fn()
    return time.perf_counter() - t0, answers


METHODS = ["sequential generate", "Inspect hf/ provider", "tinker/ -M backend=local",
           "tinker/ over the loop's backend", "sampler direct (no Inspect)"]


def measure(method: str, args: argparse.Namespace) -> dict:
    """After one untimed run, time `method` once in this process; return its seconds and answers."""
    questions = load_questions()
    folder = resolve_base_model(BUNDLED_MODEL_NAME)
    work = Path(tempfile.mkdtemp(prefix="inspect-tinker-bench-"))
    task_file = work / "questions.jsonl"
    task_file.write_text("".join(json.dumps({"id": i, "question": q, "answer": "-"}) + "\n" for i, q in enumerate(questions)))
    if method == "sequential generate":
        tokenizer = AutoTokenizer.from_pretrained(folder)
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        fn = lambda: sequential(base, tokenizer, questions, args.max_tokens)  # noqa: E731
    elif method == "Inspect hf/ provider":
        hf_model = get_model("hf/SmolLM2-135M-Instruct", model_path=str(folder), tokenizer_path=str(folder),
                             do_sample=False, batch_size=args.batch_size, device="cpu", memoize=False)
        fn = lambda: through_inspect(hf_model, task_file, work / "logs", args.max_tokens, args.batch_size)  # noqa: E731
    elif method == "tinker/ over the loop's backend":
        backend = LocalBackend.from_settings(backend_settings(load_config(DEMO_CONFIG)))  # the demo's backend, a fresh adapter: the base model's answers
        model = backend_model(backend, backend.sampler(), backend_name="local", model_path=None, config=GenerateConfig())
        fn = lambda: through_inspect(model, task_file, work / "logs", args.max_tokens, args.batch_size)  # noqa: E731
    else:
        model = get_model(f"tinker/{BUNDLED_MODEL_NAME}", backend="local", batch_size=args.batch_size, memoize=False)
        if method == "sampler direct (no Inspect)":
            opened = open_model(BUNDLED_MODEL_NAME, model.api.args, None, None)
            fn = lambda: sampler_direct(opened, questions, args.max_tokens, args.batch_size)  # noqa: E731
        else:
            fn = lambda: through_inspect(model, task_file, work / "logs", args.max_tokens, args.batch_size)  # noqa: E731
    fn()  # the warm-up, untimed, the same for every method
    seconds, answers = timed(fn)
    return {"seconds": seconds, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each method, interleaved; the median is reported")
    parser.add_argument("--method", choices=METHODS, help="measure this method alone in this process (used internally)")
    args = parser.parse_args()
    if args.method:
        print(json.dumps(measure(args.method, args)))
        return

    # Every measurement runs in a process of its own: in one shared process, a method that
    # leaves threads behind (Inspect's hf/ provider does) slows every method measured after it.
    # Interleaved, so the other engineers' load on this machine falls on all methods alike.
    results = {name: {"seconds": [], "answers": None} for name in METHODS}
    for _ in range(args.repeat):
        for name in METHODS:
            child = subprocess.run(
                [sys.executable, __file__, "--method", name, "--batch-size", str(args.batch_size),
                 "--max-tokens", str(args.max_tokens)],
                capture_output=True, text=True, check=True,
            )
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            results[name]["seconds"].append(measured["seconds"])
            results[name]["answers"] = measured["answers"]
    seconds = {name: r["seconds"] for name, r in results.items()}
    answers = {name: r["answers"] for name, r in results.items()}

    questions = load_questions()
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(BUNDLED_MODEL_NAME))
    reference = answers["sequential generate"]
    new_tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in reference)
    base_s = statistics.median(seconds["sequential generate"])
    print(f"{len(questions)} questions, max_tokens {args.max_tokens}, batch size {args.batch_size}, "
          f"median of {args.repeat} interleaved, each measurement in its own process; torch {torch.__version__}, "
          f"transformers {version('transformers')}, inspect-ai {version('inspect-ai')}, "
          f"{os.cpu_count()} CPUs ({cpu_model_name()}, {platform.machine()}), torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    hf_s = statistics.median(seconds["Inspect hf/ provider"])
    print("| method | seconds (median) | all runs | questions/s | new tokens/s | vs sequential | vs hf/ | answers = sequential |")
    print("|---|---|---|---|---|---|---|---|")
    for name in METHODS:
        s = statistics.median(seconds[name])
        same = sum(a == b for a, b in zip(answers[name], reference))
        runs = ", ".join(f"{x:.1f}" for x in seconds[name])
        print(f"| {name} | {s:.1f} | {runs} | {len(questions) / s:.2f} | {new_tokens / s:.0f} | "
              f"{base_s / s:.2f}x | {hf_s / s:.2f}x | {same}/{len(questions)} |")
    for name in METHODS:
        for i, (a, b) in enumerate(zip(answers[name], reference)):
            if a != b:
                print(f"  {name} differs on question {i}: {a!r} vs sequential {b!r}")


if __name__ == "__main__":
    main()
