"""Training throughput: inspect-tinker's local engine against TRL's SFTTrainer, in the same run.

Both train the same LoRA (r=16, alpha=32, all linear layers, no dropout) on the same
model and the same examples (the demo's training data, loss on the answers only), with
the same batch size, number of steps, AdamW settings and attention implementation
(inspect-tinker's: plain matmul attention on CPU, PyTorch's sdpa on GPU). Reported for each:
real training tokens per second (pads excluded), peak memory, and the model FLOP
utilisation against this machine's measured peak matmul throughput, twice: with the
usual 4N FLOPs per token, and with the FLOPs each trainer actually does (inspect-tinker projects
to the vocabulary only where a token is trained on; TRL projects everywhere and, with
gradient checkpointing, runs the transformer blocks forward twice). The headline pairs
variants of equal precision only.

    .venv/bin/pip install -e ".[bench]"          # TRL and datasets, the peer
    .venv/bin/python bench/train_throughput.py   # bundled model, CPU
    .venv/bin/python bench/train_throughput.py --model random:llama-3.2-1b --batch-size 32 --turns 8

Variants (`--variants`): `ours:fp32`, `ours:bf16` (autocast; inspect-tinker's defaults
otherwise), `ours:bf16:padded` (`packing: false`),
`trl:default` (SFTConfig's defaults: bf16 autocast and gradient checkpointing), `trl:fp32`
and `trl:bf16` (gradient checkpointing off, as inspect-tinker). Every measurement runs in a
process of its own, so its peak memory is its own and no variant inherits another's
threads or allocator state. Peak matmul throughput is measured in that process after the
training steps, so the MFU compares like with like under load. Each variant is measured
`--repeats` times, interleaved with the others so that load on a shared machine hits all
alike; the median is reported. Wall-clock tokens/s is the result; tokens per CPU-second
is printed beside it as a check that is less sensitive to other processes competing for
the cores.

Imports: torch, transformers, peft, TRL and inspect-tinker's engine and data rendering only, never
the config or Inspect AI (a GPU machine may have neither; tests/test_bench_scripts.py checks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from inspect_tinker.data.batching import batch_for_step
from inspect_tinker.data.records import InvalidRecord, record_to_conversation
from inspect_tinker.data.render import render_conversation
from inspect_tinker.provider.local_backend import LocalBackend, attention_for
from inspect_tinker.provider.precision import cpu_model_name
from inspect_tinker.provider.settings import AdamWSettings, LocalBackendSettings
from inspect_tinker.provider.base_model import resolve_base_model

DEMO_TRAIN = Path(__file__).parents[1] / "examples" / "demo" / "train.jsonl"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
LEARNING_RATE = 1e-3
# AdamW as TRL's SFTConfig sets it by default (beta1 0.9, beta2 0.999, eps 1e-8, no weight
# decay, clipping at 1.0), so that both trainers take the same optimizer step.
ADAMW = AdamWSettings(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, max_grad_norm=1.0)

# Shapes for randomly initialised models (no weights can be downloaded here). The
# tokenizer is always the bundled SmolLM2 one; its ids fit either vocabulary.
RANDOM_SHAPES = {
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
                         head_dim=64),
}


def model_folder(name: str, tokenizer_dir: Path | None, workdir: Path) -> Path:
    """A folder with weights and tokenizer: the bundled model, a local folder, or `random:<shape>`."""
    if not name.startswith("random:"):
        return resolve_base_model(name)
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or resolve_base_model("SmolLM2-135M-Instruct"))
    config = LlamaConfig(**RANDOM_SHAPES[name.removeprefix("random:")], max_position_embeddings=8192,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    folder = workdir / name.replace(":", "-")
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # initialising 1B weights on CPU is slow
        LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def conversations(tokenizer, turns: int, max_seq_length: int):
    """The demo's records as conversations of `turns` question-answer pairs each, rendered.

    The demo's file holds two invalid records on purpose (to show the data report); the data step
    drops those two and nothing else, as this does without the data step's checks and the config.
    """
    records = []
    for line in DEMO_TRAIN.read_text().splitlines():
        try:
            records.append(record_to_conversation(json.loads(line)))
        except (InvalidRecord, ValueError):
            continue
    grouped = [sum(records[i : i + turns], []) for i in range(0, len(records), turns)]
    return [render_conversation(tokenizer, c, max_seq_length) for c in grouped], grouped


def matmul_peak(device: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    """Measured FLOP/s of a large square matmul, the reference for model FLOP utilisation:
    per second of wall time and per CPU-second (the latter holds up when others load the CPU)."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    reps, start, cpu = (20 if device.type == "cuda" else 5), time.perf_counter(), time.process_time()
    for _ in range(reps):
        a @ b
    sync(device)
    flops = 2 * n**3 * reps
    return flops / (time.perf_counter() - start), flops / (time.process_time() - cpu)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def linear_weights(model) -> tuple[int, int]:
    """(transformer blocks, LM head): weights of the frozen base model's linear layers."""
    body = head = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and "lora_" not in name:
            if name.endswith("lm_head"):
                head += module.weight.numel()
            else:
                body += module.weight.numel()
    return body, head


class Timer:
    """Step times, real tokens, FLOPs done and CPU time, after the first `warmup` steps."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device = warmup, device
        self.seconds, self.cpu_seconds, self.tokens, self.flops_done, self.step = 0.0, 0.0, 0, 0, 0

    def begin(self) -> None:
        sync(self.device)
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def end(self, tokens: int, flops_done: int) -> None:
        sync(self.device)
        if self.step >= self.warmup:
            self.seconds += time.perf_counter() - self.t0
            self.cpu_seconds += time.process_time() - self.c0
            self.tokens += tokens
            self.flops_done += flops_done
        self.step += 1

    def result(self) -> dict:
        return {"tokens": self.tokens, "seconds": self.seconds, "tokens_per_second": self.tokens / self.seconds,
                "tokens_per_cpu_second": self.tokens / self.cpu_seconds, "flops_done": self.flops_done,
                "cpu_seconds": self.cpu_seconds}


def run_ours(model_dir, examples, args, device, precision: str, packing: bool) -> tuple[dict, int]:
    engine = LocalBackend(model_dir, LocalBackendSettings(
        base_model=str(model_dir), lora_rank=LORA["r"], lora_alpha=LORA["lora_alpha"],
        lora_dropout=LORA["lora_dropout"], lora_target_modules=LORA["target_modules"], max_lora_rank=None,
        batch_size=args.batch_size, micro_batch_size=None, max_seq_length=args.max_seq_length,
        packing=packing, precision=precision, gradient_checkpointing=False, distributed="ddp", adamw=ADAMW,
        device=str(device), seed=0, renderer_name=None, eval_batch_size=args.batch_size,
        sampling_precision="fp32",  # never samples
    ))
    body, head = linear_weights(engine.model)
    timer = Timer(args.warmup, device)
    for step in range(args.warmup + args.steps):
        batch = [examples[i] for i in batch_for_step(len(examples), args.batch_size, step, seed=0)]
        timer.begin()
        metrics = engine.forward_backward(batch)
        engine.optim_step(LEARNING_RATE)
        # Forward 2 and backward to the activations 2 FLOPs per weight: the blocks at every position
        # computed (pads too), the LM head only where the next token is trained on.
        done = 4 * body * (metrics.n_input_tokens + metrics.n_pad_tokens) + 4 * head * metrics.n_tokens
        timer.end(metrics.n_input_tokens, done)
    result = timer.result()
    result.update(precision=precision, gradient_checkpointing=False, attention=attention_for(device))
    return result, body + head


def run_trl(model_dir, conversations_, args, device, precision: str) -> tuple[dict, int]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    # Prompt-completion records: TRL trains on the completion only, as inspect-tinker trains on answers.
    # (With --turns > 1 TRL trains on the last answer only and inspect-tinker on every answer, which
    # costs inspect-tinker more: it computes logits only where there is a target.)
    rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations_]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # The attention evaluation trains with: TRL would load PyTorch's sdpa, slower on CPU with a mask.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attention_for(device))
    body, head = linear_weights(model)
    timer = Timer(args.warmup, device)
    batch_tokens: list[tuple[int, int]] = []  # (real tokens, positions computed) of each batch
    checkpointing = [False]  # the trainer's own setting, read once it exists

    class StepTimes(TrainerCallback):
        def on_step_begin(self, *_, **__):
            timer.begin()

        def on_step_end(self, *_, **__):
            real, positions = batch_tokens[timer.step]
            # Every position through blocks and LM head, forward and backward; checkpointing runs
            # the blocks forward once more in the backward pass.
            done = positions * (4 * (body + head) + (2 * body if checkpointing[0] else 0))
            timer.end(real, done)

    config = {
        "output_dir": str(Path(args.workdir) / "trl"), "per_device_train_batch_size": args.batch_size,
        "max_steps": args.warmup + args.steps, "learning_rate": LEARNING_RATE, "report_to": "none",
        "save_strategy": "no", "logging_steps": 1000, "max_length": args.max_seq_length, "seed": 0,
        "dataloader_drop_last": True, "use_cpu": device.type == "cpu", "disable_tqdm": True,
    }
    if precision != "default":
        config.update(bf16=precision == "bf16", gradient_checkpointing=False)
    copies = -(-(args.warmup + args.steps) * args.batch_size // len(rows)) + 1
    trainer = SFTTrainer(
        model=model, args=SFTConfig(**config), train_dataset=Dataset.from_list(rows * copies),
        processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA), callbacks=[StepTimes()],
    )
    collate = trainer.data_collator

    def counting_collator(features):
        batch = collate(features)
        positions = batch["input_ids"].numel()
        batch_tokens.append((int(batch["attention_mask"].sum()) if "attention_mask" in batch else positions, positions))
        return batch

    trainer.data_collator = counting_collator
    checkpointing[0] = bool(trainer.args.gradient_checkpointing)
    trainer.train()
    result = timer.result()
    result.update(precision="bf16" if trainer.args.bf16 else "fp32", gradient_checkpointing=checkpointing[0],
                  attention=model.config._attn_implementation)
    return result, body + head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="SmolLM2-135M-Instruct", help="bundled name, model folder, or random:<shape>")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder for random models (default: the bundled model's)")
    parser.add_argument("--variants", default="ours:bf16,ours:fp32,trl:default,trl:bf16,trl:fp32")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--turns", type=int, default=1, help="question-answer pairs per example (longer sequences)")
    parser.add_argument("--max-seq-length", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", help="where random models and TRL's output go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--one", metavar="VARIANT", help=argparse.SUPPRESS)  # measure one variant in this process
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)  # with --one: the prepared model folder
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_variant(args)), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="inspect-tinker-bench-") as scratch:
        args.workdir = args.workdir or scratch
        measure(args)


def pick_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)


def quiet_libraries() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def measure_variant(args: argparse.Namespace) -> dict:
    """Train variant `args.one` in this process; its throughput, FLOPs, MFU and peak memory."""
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_libraries()
    from transformers import AutoTokenizer

    device = pick_device(args.device)
    examples, convs = conversations(AutoTokenizer.from_pretrained(args.model_dir), args.turns, args.max_seq_length)
    engine, precision, *rest = args.one.split(":")
    if engine == "ours":
        result, n_weights = run_ours(args.model_dir, examples, args, device, precision, packing=rest != ["padded"])
    else:
        result, n_weights = run_trl(args.model_dir, convs, args, device, precision)
    # Before the matmul probe below, which allocates its own matrices.
    result["peak_memory_gb"] = (torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda"
                                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)  # KiB on Linux
    result["peak_memory_kind"] = "GPU memory allocated" if device.type == "cuda" else "process RSS"
    peak, peak_cpu = matmul_peak(device, torch.float32 if result["precision"] == "fp32" else torch.bfloat16)
    # The usual count: forward 2N and backward to the activations 2N per real token, N the frozen
    # linear weights (LM head included); the frozen weights get no weight gradient.
    flops = 4 * n_weights
    result.update(
        peak_matmul_flops=peak, peak_matmul_flops_per_cpu_second=peak_cpu, model_flops_per_token=flops,
        mfu=result["tokens_per_second"] * flops / peak, mfu_cpu=result["tokens_per_cpu_second"] * flops / peak_cpu,
        mfu_done=result["flops_done"] / result["seconds"] / peak,
        mfu_done_cpu=result["flops_done"] / result["cpu_seconds"] / peak_cpu,
        load_average=os.getloadavg()[0],
    )
    return result


def environment(args: argparse.Namespace, device: torch.device, examples: list) -> dict:
    import peft
    import transformers

    try:
        import trl
    except ImportError:
        trl = None
    return {
        "machine": (f"{torch.cuda.get_device_name()}, " if device.type == "cuda" else "")
        + f"{cpu_model_name()}, {os.cpu_count()} CPUs, {platform.system()}",
        "threads": args.threads or torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "trl": trl.__version__ if trl else None,
        "load_average": os.getloadavg(), "model": args.model, "batch_size": args.batch_size, "turns": args.turns,
        "examples": len(examples), "mean_tokens_per_example": sum(len(e.input_ids) for e in examples) / len(examples),
        "steps": args.steps, "warmup": args.warmup,
    }


def measure(args: argparse.Namespace) -> None:
    quiet_libraries()
    from transformers import AutoTokenizer

    device = pick_device(args.device)
    model_dir = model_folder(args.model, args.tokenizer, Path(args.workdir))
    examples, _ = conversations(AutoTokenizer.from_pretrained(model_dir), args.turns, args.max_seq_length)
    env = environment(args, device, examples)
    print(f"Machine: {env['machine']}; torch threads {env['threads']}; load average "
          + ", ".join(f"{x:.1f}" for x in env["load_average"]), flush=True)
    print(json.dumps(env), flush=True)

    runs: dict[str, list[dict]] = {}
    variants = [v for v in args.variants.split(",") if env["trl"] or not v.startswith("trl")]
    for repeat in range(args.repeats):
        for variant in variants if repeat % 2 == 0 else variants[::-1]:
            child = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], "--one", variant, "--model-dir", str(model_dir),
                 "--workdir", args.workdir],
                stdout=subprocess.PIPE, text=True, check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            runs.setdefault(variant, []).append(result)
            print(json.dumps({"variant": variant, "repeat": repeat, **result}), flush=True)

    keys = ("tokens_per_second", "tokens_per_cpu_second", "mfu", "mfu_done", "mfu_cpu", "mfu_done_cpu", "peak_memory_gb")
    summary = {v: {k: statistics.median(r[k] for r in rs) for k in keys} | {
        k: rs[0][k] for k in ("precision", "gradient_checkpointing", "attention")} for v, rs in runs.items()}
    memory = "peak GB" + (" (GPU)" if device.type == "cuda" else " (RSS)")
    print(f"\n{'variant':22s} {'precision':9s} {'tokens/s':>9s} {'tokens/cpu-s':>12s} {'MFU 4N':>7s} {'MFU done':>8s} "
          f"{'4N cpu':>7s} {'done cpu':>8s} {memory:>13s}")
    for v, s in summary.items():
        print(f"{v:22s} {s['precision']:9s} {s['tokens_per_second']:9.1f} {s['tokens_per_cpu_second']:12.1f} "
              f"{s['mfu']:7.1%} {s['mfu_done']:8.1%} {s['mfu_cpu']:7.1%} {s['mfu_done_cpu']:8.1%} {s['peak_memory_gb']:13.2f}")
    print()
    for line in headline(summary):
        print(line)
    if args.out:
        args.out.write_text(json.dumps({"environment": env, "runs": runs, "median": summary}, indent=2))


def headline(summary: dict[str, dict]) -> list[str]:
    """inspect-tinker over each TRL variant, against inspect-tinker's best variant of the same precision only."""
    lines = []
    for metric in ("tokens_per_second", "tokens_per_cpu_second"):
        for peer, theirs in summary.items():
            if not peer.startswith("trl"):
                continue
            same = [v for v, s in summary.items() if v.startswith("ours") and s["precision"] == theirs["precision"]]
            if not same:
                continue
            ours = max(same, key=lambda v: summary[v][metric])
            setting = "gradient checkpointing" if theirs["gradient_checkpointing"] else "no gradient checkpointing"
            lines.append(f"{metric}, {theirs['precision']}: {ours} / {peer} ({setting}): "
                         f"{summary[ours][metric] / theirs[metric]:.2f}x")
    return lines


if __name__ == "__main__":
    sys.exit(main())
