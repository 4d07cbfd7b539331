"""Training throughput: evaltune's local engine against TRL's SFTTrainer, in the same run.

Both train the same LoRA (r=16, alpha=32, all linear layers, no dropout) on the same
model and the same examples (the demo's training data, loss on the answers only), with
the same batch size and number of steps. Reported: real training tokens per second (pads
excluded) for each, the ratio, and the model FLOP utilisation against this machine's
measured peak matmul throughput.

    .venv/bin/pip install -e ".[bench]"          # TRL and datasets, the peer
    .venv/bin/python bench/train_throughput.py   # bundled model, CPU
    .venv/bin/python bench/train_throughput.py --model random:llama-3.2-1b --batch-size 32 --turns 8

Variants (`--variants`): `evaltune:fp32`, `evaltune:bf16` (autocast; evaltune's defaults
otherwise), `evaltune:bf16:padded` (`packing: false`),
`trl:default` (SFTConfig's defaults: bf16 autocast and gradient checkpointing), `trl:fp32`
and `trl:bf16` (gradient checkpointing off, as evaltune). Peak matmul throughput is
measured again next to every measurement, so the MFU compares like with like under load.
Each variant is measured `--repeats` times, interleaved with the others so that load on
a shared machine hits all alike; the median is reported. Wall-clock tokens/s is the
result; tokens per CPU-second is printed beside it as a check that is less sensitive to
other processes competing for the cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from evaltune.config import DataConfig
from evaltune.data import batch_for_step, check_training_records, render_conversation
from evaltune.engines.local import LocalEngine
from evaltune.models import resolve_base_model

DEMO_TRAIN = Path(__file__).parents[1] / "src" / "evaltune" / "demo" / "train.jsonl"
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
LEARNING_RATE = 1e-3

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
    """The demo's records as conversations of `turns` question-answer pairs each, rendered."""
    records = check_training_records(DEMO_TRAIN, DataConfig(), eval_inputs=[]).conversations
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


def matmul_parameters(model) -> int:
    """Weights of the frozen base model's linear layers (the LM head included)."""
    return sum(m.weight.numel() for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lora_" not in n)


class Timer:
    """Step times, real tokens and CPU time, after the first `warmup` steps."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device = warmup, device
        self.seconds, self.cpu_seconds, self.tokens, self.step = 0.0, 0.0, 0, 0

    def begin(self) -> None:
        sync(self.device)
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def end(self, tokens: int) -> None:
        sync(self.device)
        if self.step >= self.warmup:
            self.seconds += time.perf_counter() - self.t0
            self.cpu_seconds += time.process_time() - self.c0
            self.tokens += tokens
        self.step += 1

    def result(self) -> dict:
        out = {"tokens": self.tokens, "seconds": self.seconds, "tokens_per_second": self.tokens / self.seconds,
               "tokens_per_cpu_second": self.tokens / self.cpu_seconds}
        if self.device.type == "cuda":
            out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        return out


def run_evaltune(model_dir, examples, args, device, precision: str, packing: bool) -> tuple[dict, int]:
    engine = LocalEngine(model_dir, base_model=str(model_dir), lora_rank=LORA["r"], lora_alpha=LORA["lora_alpha"],
                         precision=precision, packing=packing, device=str(device), seed=0)
    timer = Timer(args.warmup, device)
    for step in range(args.warmup + args.steps):
        batch = [examples[i] for i in batch_for_step(len(examples), args.batch_size, step, seed=0)]
        timer.begin()
        metrics = engine.forward_backward(batch)
        engine.optim_step(LEARNING_RATE)
        timer.end(metrics.n_input_tokens)
    return timer.result(), matmul_parameters(engine.model)


def run_trl(model_dir, conversations_, args, device, precision: str, gradient_checkpointing: bool) -> tuple[dict, int]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    # Prompt-completion records: TRL trains on the completion only, as evaltune trains on answers.
    # (With --turns > 1 TRL trains on the last answer only and evaltune on every answer, which
    # costs evaltune more: it computes logits only where there is a target.)
    rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in conversations_]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    timer = Timer(args.warmup, device)
    batch_tokens: list[int] = []

    class StepTimes(TrainerCallback):
        def on_step_begin(self, *_, **__):
            timer.begin()

        def on_step_end(self, *_, **__):
            timer.end(batch_tokens[timer.step])

    config = {
        "output_dir": str(Path(args.workdir) / "trl"), "per_device_train_batch_size": args.batch_size,
        "max_steps": args.warmup + args.steps, "learning_rate": LEARNING_RATE, "report_to": "none",
        "save_strategy": "no", "logging_steps": 1000, "max_length": args.max_seq_length, "seed": 0,
        "dataloader_drop_last": True, "use_cpu": device.type == "cpu", "disable_tqdm": True,
    }
    if precision != "default":
        config.update(bf16=precision == "bf16", gradient_checkpointing=gradient_checkpointing)
    copies = -(-(args.warmup + args.steps) * args.batch_size // len(rows)) + 1
    trainer = SFTTrainer(
        model=model, args=SFTConfig(**config), train_dataset=Dataset.from_list(rows * copies),
        processing_class=tokenizer, peft_config=LoraConfig(task_type="CAUSAL_LM", **LORA), callbacks=[StepTimes()],
    )
    collate = trainer.data_collator

    def counting_collator(features):
        batch = collate(features)
        batch_tokens.append(int(batch["attention_mask"].sum()) if "attention_mask" in batch else batch["input_ids"].numel())
        return batch

    trainer.data_collator = counting_collator
    trainer.train()
    return timer.result(), matmul_parameters(trainer.model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="SmolLM2-135M-Instruct", help="bundled name, model folder, or random:<shape>")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder for random models (default: the bundled model's)")
    parser.add_argument("--variants", default="evaltune:bf16,evaltune:fp32,trl:default,trl:bf16,trl:fp32")
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evaltune-bench-") as scratch:
        args.workdir = args.workdir or scratch
        measure(args)


def measure(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    import peft

    model_dir = model_folder(args.model, args.tokenizer, Path(args.workdir))
    from transformers import AutoTokenizer

    examples, convs = conversations(AutoTokenizer.from_pretrained(model_dir), args.turns, args.max_seq_length)
    env = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "load_average": os.getloadavg(), "model": args.model, "batch_size": args.batch_size, "turns": args.turns,
        "examples": len(examples), "mean_tokens_per_example": sum(len(e.input_ids) for e in examples) / len(examples),
        "steps": args.steps, "warmup": args.warmup,
    }
    try:
        import datasets
        import trl

        datasets.disable_progress_bars()
        env["trl"] = trl.__version__
    except ImportError:
        env["trl"] = None
    print(json.dumps(env), flush=True)

    runs: dict[str, list[dict]] = {}
    for repeat in range(args.repeats):
        variants = args.variants.split(",")
        for variant in variants if repeat % 2 == 0 else variants[::-1]:
            engine, precision, *rest = variant.split(":")
            if engine == "trl" and env["trl"] is None:
                continue
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            if engine == "evaltune":
                result, n_matmul = run_evaltune(model_dir, examples, args, device, precision, packing=rest != ["padded"])
            else:
                result, n_matmul = run_trl(model_dir, convs, args, device, precision, gradient_checkpointing=False)
            peak, peak_cpu = matmul_peak(device, torch.float32 if precision == "fp32" else torch.bfloat16)
            # Forward 2N and backward to the activations 2N per token through the frozen weights.
            flops = 4 * n_matmul
            result.update(peak_matmul_flops=peak, peak_matmul_flops_per_cpu_second=peak_cpu, model_flops_per_token=flops,
                          mfu=result["tokens_per_second"] * flops / peak,
                          mfu_cpu=result["tokens_per_cpu_second"] * flops / peak_cpu)
            result["load_average"] = os.getloadavg()[0]
            runs.setdefault(variant, []).append(result)
            gc.collect()  # the next variant loads its own copy of the model
            if device.type == "cuda":
                torch.cuda.empty_cache()
            print(json.dumps({"variant": variant, "repeat": repeat, **result}), flush=True)

    keys = ("tokens_per_second", "tokens_per_cpu_second", "mfu", "mfu_cpu")
    summary = {v: {k: statistics.median(r[k] for r in rs) for k in keys} for v, rs in runs.items()}
    print(f"\n{'variant':24s} {'tokens/s':>10s} {'MFU':>7s} {'tokens/cpu-s':>13s} {'MFU (cpu)':>10s}")
    for v, s in summary.items():
        print(f"{v:24s} {s['tokens_per_second']:10.1f} {s['mfu']:7.1%} {s['tokens_per_cpu_second']:13.1f} {s['mfu_cpu']:10.1%}")
    for metric in ("tokens_per_second", "tokens_per_cpu_second"):
        ours = max((s[metric], v) for v, s in summary.items() if v.startswith("evaltune"))
        for peer in [v for v in summary if v.startswith("trl")]:
            print(f"{metric}: {ours[1]} / {peer}: {ours[0] / summary[peer][metric]:.2f}x")
    if args.out:
        args.out.write_text(json.dumps({"environment": env, "runs": runs, "median": summary}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
