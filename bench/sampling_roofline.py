"""Sampling against this machine's limits: a roofline for decoding, group sampling, and bf16 sampling.

On the bundled model (SmolLM2-135M-Instruct), in one process, with `--threads` torch threads:

1. **Roofline.** This machine's memory bandwidth (a 512 MB tensor copy: read + write bytes per
   second) and matmul peak (train_throughput.matmul_peak, fp32 and bf16). A decode step at
   batch B reads every weight once (the LM head is the tied embedding) and the KV cache of
   every row, and does 2 FLOPs per weight per row, so decoding is bounded by
   B x bandwidth / bytes read per step and by peak / FLOPs per token. Decode tokens/s is
   measured as transformers' `generate` runs it for the sampler (greedy, left-padded batches
   of the benchmark's questions, `min_new_tokens` so that no row stops early): the time of
   1 + N new tokens less the time of 1 (the prefill), over N x B tokens.
2. **Group sampling.** `num_samples` completions of one prompt (an RL group, Inspect's
   num_choices) through the sampler (`generate_batch`: the prompt prefilled once, its KV cache
   repeated per row) against the same prompt given as that many independent rows of one batch
   (each row prefilled: what the sampler did before), and against one completion. Prompts: the
   questions alone and each behind a long passage (RL prompts carry instructions and context).
3. **bf16 sampling.** The same greedy answers generated from an fp32 model and from a copy of
   it in bf16 (weights stored in bf16, not autocast, which would cast every weight at every
   step): how many answers differ and the time of each.

Every timing is the fastest of `--repeat` (a short call on a loaded machine is rarely
interrupted every time) and is reported per second of wall time and per CPU-second of this
process (which other processes' load inflates less). Every method runs in the same process,
interleaved, so load falls on all alike.

Run: .venv/bin/python bench/sampling_roofline.py [--threads 1] [--repeat 3] [--max-tokens 24]
Results are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from eval_throughput import load_questions, prompt_ids  # noqa: E402
from train_throughput import matmul_peak  # noqa: E402

from inspect_tinker.provider.backend import SamplingParams  # noqa: E402
from inspect_tinker.provider.base_model import BUNDLED_MODEL_NAME, resolve_base_model  # noqa: E402
from inspect_tinker.provider.local_backend import attention_for  # noqa: E402
from inspect_tinker.provider.local_sampling import generate_batch  # noqa: E402
from inspect_tinker.provider.precision import cpu_model_name  # noqa: E402

CPU = torch.device("cpu")


def fastest(fn, repeat: int) -> tuple[float, float, object]:
    """(wall seconds, CPU-seconds, result) of the fastest of `repeat` calls, after one untimed call."""
    result = fn()
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return *best, result


def copy_bandwidth(repeat: int) -> tuple[float, float]:
    """Bytes per second (wall, CPU) of copying 512 MB, counting the bytes read and written."""
    source = torch.ones(2**27)
    target = torch.empty_like(source)
    wall, cpu, _ = fastest(lambda: target.copy_(source), repeat)
    moved = 2 * source.numel() * source.element_size()
    return moved / wall, moved / cpu


def left_padded(tokenizer, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):], mask[row, width - len(p):] = torch.tensor(p), 1
    return ids, mask


@torch.no_grad()
def decode_rate(model, tokenizer, prompts: list[list[int]], new_tokens: int, repeat: int) -> tuple[float, float]:
    """Decode tokens per second (wall, CPU) at the batch of `prompts`, the prefill subtracted."""
    ids, mask = left_padded(tokenizer, prompts)

    def run(n: int):
        return lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                                      do_sample=False, pad_token_id=tokenizer.pad_token_id)

    one_wall, one_cpu, _ = fastest(run(1), repeat)
    all_wall, all_cpu, _ = fastest(run(1 + new_tokens), repeat)
    tokens = new_tokens * len(prompts)
    return tokens / max(all_wall - one_wall, 1e-9), tokens / max(all_cpu - one_cpu, 1e-9)


def independent_rows(model, tokenizer, prompt: list[int], k: int, params: SamplingParams):
    """`k` completions of `prompt` as `k` rows of one batch, each prefilled (the sampler before
    prefix sharing), drawing from the random stream a seeded group draws from: the same tokens."""
    with torch.random.fork_rng():
        torch.manual_seed(params.seed)
        # Unseeded, the rows of several prompts are one batch; seeded as above.
        return generate_batch(model, tokenizer, CPU, [prompt] * k, 1, replace(params, seed=None))


def step_cost(model, batch: int, context: int, dtype_bytes: int) -> tuple[float, float]:
    """(bytes read, FLOPs) of one decode step at `batch` rows with `context` tokens cached per row."""
    config = model.config
    weights = sum(p.numel() for p in model.parameters())  # tied LM head: the embedding, read once
    kv_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
    bytes_read = (weights + batch * context * kv_per_token) * dtype_bytes
    linear = weights  # every weight is in a matmul once per token (the embedding as the LM head)
    attention = 2 * 2 * config.num_hidden_layers * config.hidden_size * context  # scores and weighted values
    return bytes_read, batch * (2 * linear + attention)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared 2-core machine, 2 threads mostly wait for each other)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--group-prompts", type=int, default=6, help="prompts timed for group sampling")
    parser.add_argument("--group-size", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_base_model(BUNDLED_MODEL_NAME)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    fp32 = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=attention_for(CPU)).eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    questions = load_questions()
    prompts = [prompt_ids(tokenizer, q) for q in questions]
    print(f"# {len(questions)} questions, torch {torch.__version__}, transformers {version('transformers')}, "
          f"{os.cpu_count()} CPUs ({cpu_model_name()}, {platform.machine()}), torch threads {args.threads}, "
          f"load average at start {os.getloadavg()[0]:.1f}", flush=True)

    bandwidth, bandwidth_cpu = copy_bandwidth(args.repeat)
    peaks = {"fp32": matmul_peak(CPU, torch.float32), "bf16": matmul_peak(CPU, torch.bfloat16)}
    print(f"\ncopy bandwidth {bandwidth / 1e9:.1f} GB/s ({bandwidth_cpu / 1e9:.1f} per CPU-second); matmul peak "
          + ", ".join(f"{k} {w / 1e9:.0f} GFLOP/s ({c / 1e9:.0f} per CPU-second)" for k, (w, c) in peaks.items()))

    # 1. Roofline
    print("\n| precision | batch | decode tokens/s (per CPU-s) | bandwidth bound (per CPU-s) | % of it (CPU) "
          "| compute bound (per CPU-s) | % of it (CPU) | % of the lower bound (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    context = round(sum(map(len, prompts)) / len(prompts)) + args.max_tokens // 2
    for batch in map(int, args.batches.split(",")):
        rows = [prompts[i % len(prompts)] for i in range(batch)]
        for name, model, size in (("fp32", fp32, 4), ("bf16", bf16, 2)):
            wall, cpu = decode_rate(model, tokenizer, rows, args.max_tokens, args.repeat)
            bytes_read, flops = step_cost(model, batch, context, size)
            bw_bound, bw_bound_cpu = batch * bandwidth / bytes_read, batch * bandwidth_cpu / bytes_read
            peak, peak_cpu = peaks[name]
            c_bound, c_bound_cpu = batch * peak / flops, batch * peak_cpu / flops
            print(f"| {name} | {batch} | {wall:.0f} ({cpu:.0f}) | {bw_bound:.0f} ({bw_bound_cpu:.0f}) | "
                  f"{wall / bw_bound:.0%} ({cpu / bw_bound_cpu:.0%}) | {c_bound:.0f} ({c_bound_cpu:.0f}) | "
                  f"{wall / c_bound:.0%} ({cpu / c_bound_cpu:.0%}) | "
                  f"{wall / min(bw_bound, c_bound):.0%} ({cpu / min(bw_bound_cpu, c_bound_cpu):.0%}) |", flush=True)

    # 2. Group sampling
    passage = " ".join(q for q in questions[:40])  # a few hundred tokens of context before the question
    kinds = {"question": prompts[: args.group_prompts],
             "passage + question": [prompt_ids(tokenizer, f"{passage}\n\n{q}") for q in questions[: args.group_prompts]]}
    params = SamplingParams(max_tokens=args.max_tokens, temperature=1.0, seed=1, logprobs=True)
    k = args.group_size
    print(f"\n| prompt | tokens | 1 completion s (CPU) | {k} shared prefill s (CPU) | {k} independent rows s (CPU) "
          f"| shared / 1 (CPU) | independent / 1 (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind, group_prompts in kinds.items():
        # Each call is one prompt; rows stop at their own end of turn, so the new tokens per call
        # vary: the times are summed over the prompts and each is the fastest of `repeat`.
        totals = {"one": [0.0, 0.0], "shared": [0.0, 0.0], "independent": [0.0, 0.0]}
        for p in group_prompts:
            calls = {"one": lambda: generate_batch(fp32, tokenizer, CPU, [p], 1, params),
                     "shared": lambda: generate_batch(fp32, tokenizer, CPU, [p], k, params),
                     "independent": lambda: independent_rows(fp32, tokenizer, p, k, params)}
            for name, call in calls.items():
                wall, cpu, _ = fastest(call, args.repeat)
                totals[name][0] += wall
                totals[name][1] += cpu
        (w1, c1), (ws, cs), (wi, ci) = totals["one"], totals["shared"], totals["independent"]
        tokens = round(sum(map(len, group_prompts)) / len(group_prompts))
        print(f"| {kind} | {tokens} | {w1:.2f} ({c1:.2f}) | {ws:.2f} ({cs:.2f}) | {wi:.2f} ({ci:.2f}) | "
              f"{ws / w1:.2f}x ({cs / c1:.2f}x) | {wi / w1:.2f}x ({ci / c1:.2f}x) |", flush=True)

    # 3. bf16 sampling: the greedy answers of the benchmark's questions, batch 16 as the provider's default
    greedy = SamplingParams(max_tokens=args.max_tokens, temperature=0.0, stop_tokens=(tokenizer.eos_token_id,))

    def answers(model):
        return lambda: [s[0].tokens for i in range(0, len(prompts), 16)
                        for s in generate_batch(model, tokenizer, CPU, prompts[i : i + 16], 1, greedy)]

    (w32, c32, a32), (w16, c16, a16) = fastest(answers(fp32), args.repeat), fastest(answers(bf16), args.repeat)
    differ = [i for i, (a, b) in enumerate(zip(a32, a16)) if a != b]
    print(f"\n| weights | {len(prompts)} greedy answers s (CPU) | speed-up (CPU) | answers differing from fp32 |")
    print("|---|---:|---:|---:|")
    print(f"| fp32 | {w32:.2f} ({c32:.2f}) | 1.00x | - |")
    print(f"| bf16 | {w16:.2f} ({c16:.2f}) | {w32 / w16:.2f}x ({c32 / c16:.2f}x) | {len(differ)}/{len(prompts)} |")
    for i in differ:
        print(f"  question {i}: fp32 {tokenizer.decode(a32[i], skip_special_tokens=True)!r} "
              f"bf16 {tokenizer.decode(a16[i], skip_special_tokens=True)!r}")
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
