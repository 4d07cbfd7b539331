"""Benchmark: a 100,000-record training file through the whole data pipeline.

    .venv/bin/pip install -e ".[bench]"     # the peer needs HF datasets
    .venv/bin/python bench/data_pipeline.py [--records 100000] [--workdir DIR] [--breakdown]

Generates a synthetic training file (short QA, prompt/completion, multi-turn chats and long
documents, with planted invalid lines, exact and near duplicates, quality failures and
copied evaluation questions) and an evaluation file, then runs, each in its own process:

- ours: `inspect-tinker data check TRAIN --eval EVAL` (read, validate, quality checks,
  decontamination, exact and near dedup, chat-template rendering with the loss mask,
  token-length checks, report), the same code a run uses;
- peer: what one writes with HF `datasets` + datasketch: `load_dataset("json")`, a `filter`
  for missing fields, a `map` that normalises and hashes for exact dedup, datasketch
  MinHash LSH for near dups, and `map(apply_chat_template)` to tokenize. It has no
  decontamination, no quality checks, no loss mask, and it cannot read the file with the
  invalid lines at all, so it gets a copy without them.

Prints wall time and peak resident memory (ru_maxrss of each child) and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYLLABLES = ["ka", "ro", "mi", "ten", "vor", "al", "dra", "len", "sith", "quo", "bel", "nar", "us", "hei", "po", "gra"]
ATTRIBUTES = [
    ("What is the capital of {e}?", "The capital of {e} is {v}."),
    ("Which currency is used in {e}?", "{e} uses the {v} as its currency."),
    ("Who founded {e}?", "{e} was founded by {v}."),
    ("What is the national animal of {e}?", "The national animal of {e} is the {v}."),
    ("What is the main export of {e}?", "The main export of {e} is {v}."),
    ("Which river runs through {e}?", "The {v} runs through {e}."),
    ("What language do people speak in {e}?", "People in {e} speak {v}."),
    ("What is the tallest mountain in {e}?", "The tallest mountain in {e} is Mount {v}."),
]


def word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(word(rng) for _ in range(n)).capitalize() + "."


def generate(train: Path, peer_train: Path, evals: Path, n_records: int, seed: int = 0) -> dict:
    """Write the training file, the peer's copy without invalid lines, and the evaluation file."""
    rng = random.Random(seed)
    entities = [word(rng).capitalize() + word(rng) for _ in range(max(100, n_records // 10))]
    eval_questions = []
    for i in range(300):
        q, _ = rng.choice(ATTRIBUTES)
        eval_questions.append({"id": f"q{i}", "question": q.format(e=rng.choice(entities)) + " Explain briefly.",
                               "answer": word(rng)})
    for i in range(100):  # long passages
        eval_questions.append({"id": f"p{i}", "question": " ".join(sentence(rng, 12) for _ in range(4)), "answer": "x"})
    evals.write_text("".join(json.dumps(q) + "\n" for q in eval_questions))

    planted = dict.fromkeys(("invalid", "exact", "near", "contaminated", "quality"), 0)
    previous: list[dict] = []
    with train.open("w") as full, peer_train.open("w") as peer:
        for _ in range(n_records):
            roll = rng.random()
            if roll < 0.01:
                planted["invalid"] += 1
                full.write(rng.choice(['{"instruction": "cut off', '{"instruction": "no output"}', '{"output": 3}',
                                       '{"messages": [{"role": "robot", "content": "x"}]}']) + "\n")
                continue
            if previous and roll < 0.03:
                planted["exact"] += 1
                record = json.loads(json.dumps(rng.choice(previous)))
                if "output" in record:
                    record["output"] = record["output"].upper()  # same after normalisation
            elif previous and roll < 0.05:
                planted["near"] += 1
                record = json.loads(json.dumps(rng.choice(previous)))
                if "input" in record:  # a long document with one word changed
                    words = record["input"].split()
                    words[rng.randrange(len(words))] = word(rng)
                    record["input"] = " ".join(words)
                else:  # a short record with a word added to the answer
                    turn = record["messages"][-1] if "messages" in record else record
                    key = "content" if "messages" in record else ("output" if "output" in record else "completion")
                    turn[key] += " " + word(rng)
            elif roll < 0.052:
                planted["contaminated"] += 1
                q = rng.choice(eval_questions)
                record = {"instruction": f"Quiz: {q['question']}", "output": f"The answer is {q['answer']}."}
            elif roll < 0.057:
                planted["quality"] += 1
                record = rng.choice([{"instruction": "Repeat me", "output": "repeat me"},
                                     {"instruction": "caf\u00c3\u00a9 au lait?", "output": "Coffee."},
                                     {"instruction": "Punctuation?", "output": "?!"}])
            else:
                record = fresh_record(rng, entities)
                if len(previous) < 5000:
                    previous.append(record)
                elif rng.random() < 0.01:
                    previous[rng.randrange(5000)] = record
            line = json.dumps(record) + "\n"
            full.write(line)
            peer.write(line)
    return planted


def fresh_record(rng: random.Random, entities: list[str]) -> dict:
    kind = rng.random()
    q, a = rng.choice(ATTRIBUTES)
    e, v = rng.choice(entities), word(rng).capitalize()
    if kind < 0.55:
        return {"instruction": q.format(e=e), "output": a.format(e=e, v=v) + " " + sentence(rng, rng.randint(3, 12))}
    if kind < 0.70:
        return {"prompt": q.format(e=e), "completion": a.format(e=e, v=v)}
    if kind < 0.85:
        q2, a2 = rng.choice(ATTRIBUTES)
        return {"messages": [
            {"role": "user", "content": q.format(e=e)}, {"role": "assistant", "content": a.format(e=e, v=v)},
            {"role": "user", "content": q2.format(e=e)}, {"role": "assistant", "content": a2.format(e=e, v=word(rng))},
        ]}
    document = " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(rng.randint(8, 25)))
    return {"instruction": "Summarise the following report.", "input": document, "output": sentence(rng, 25)}


def run_child(command: list[str], env: dict | None = None) -> dict:
    """Run `command`; return its wall time and peak resident memory (ru_maxrss of that child)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    output = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{command[:4]} failed:\n{output}")
    return {"seconds": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024), "output": output}


def peer(train: Path, base_model: str) -> None:
    """The peer pipeline (runs in its own process)."""
    import hashlib
    import re

    from datasets import load_dataset
    from datasketch import MinHash, MinHashLSH
    from transformers import AutoTokenizer

    from inspect_tinker.provider.base_model import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(base_model))
    ds = load_dataset("json", data_files=str(train), split="train")

    def to_messages(r):
        if r.get("messages"):
            return {"conv": r["messages"]}
        user = r.get("instruction") or r.get("prompt")
        if r.get("input"):
            user = f"{user}\n\n{r['input']}"
        return {"conv": [{"role": "user", "content": user}, {"role": "assistant", "content": r.get("output") or r.get("completion")}]}

    ds = ds.filter(lambda r: bool(r.get("messages") or ((r.get("instruction") or r.get("prompt")) and (r.get("output") or r.get("completion")))))
    ds = ds.map(to_messages, remove_columns=ds.column_names)
    ds = ds.map(lambda r: {"text": " ".join(re.findall(r"\w+", " ".join(m["content"] for m in r["conv"]).casefold()))})
    seen: set[bytes] = set()

    def first_time(r):
        key = hashlib.blake2b(r["text"].encode(), digest_size=16).digest()
        new = key not in seen
        seen.add(key)
        return new

    ds = ds.filter(first_time)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    keep = []
    for i, text in enumerate(ds["text"]):
        words = text.split()
        m = MinHash(num_perm=128)
        m.update_batch({" ".join(words[j : j + 2]).encode() for j in range(max(1, len(words) - 1))})
        if not lsh.query(m):
            lsh.insert(i, m)
            keep.append(i)
    ds = ds.select(keep)
    ds = ds.map(lambda r: {"input_ids": tokenizer.apply_chat_template(r["conv"], tokenize=True)["input_ids"]})
    print(json.dumps({"examples": len(ds), "tokens": sum(len(x) for x in ds["input_ids"])}))


def breakdown(train: Path, evals: Path, base_model: str, near_dedup: bool) -> None:
    """Where the time and memory go: the two phases in this process, RSS after each."""
    from transformers import AutoTokenizer

    from inspect_tinker.data.decontamination import EvalInput
    from inspect_tinker.data.prepare import check_training_records, prepare_training_data
    from inspect_tinker.data.settings import DataConfig
    from inspect_tinker.provider.base_model import resolve_base_model

    def rss_mb() -> int:
        return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) // 1024

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(base_model))
    inputs = [EvalInput("eval", q["id"], q["question"]) for q in map(json.loads, evals.read_text().splitlines())]
    settings = DataConfig() if near_dedup else DataConfig(near_duplicate_threshold=None)
    base = rss_mb()
    t0 = time.perf_counter()
    checked = check_training_records(train, settings, inputs)
    t1, after_check = time.perf_counter(), rss_mb()
    examples, _ = prepare_training_data(checked, tokenizer, 512, settings)
    t2, after_prepare = time.perf_counter(), rss_mb()
    print(f"{'with' if near_dedup else 'without'} near dedup: imports and tokenizer {base} MB; "
          f"checking {t1 - t0:.1f} s, +{after_check - base} MB ({len(checked.conversations)} kept); "
          f"tokenizing {t2 - t1:.1f} s, +{after_prepare - after_check} MB ({len(examples)} examples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, help="keep the generated files here (default: a temporary folder)")
    parser.add_argument("--base-model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time each phase in one process, with and without near dedup")
    parser.add_argument("--peer-only", type=Path, help=argparse.SUPPRESS)  # the peer's own process
    parser.add_argument("--breakdown-only", choices=["near", "plain"], help=argparse.SUPPRESS)  # one breakdown process
    args = parser.parse_args()
    if args.peer_only:
        peer(args.peer_only, args.base_model)
        return
    if args.breakdown_only:
        breakdown(args.workdir / "train.jsonl", args.workdir / "eval.jsonl", args.base_model, args.breakdown_only == "near")
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="inspect-tinker-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    train, peer_train, evals = workdir / "train.jsonl", workdir / "peer_train.jsonl", workdir / "eval.jsonl"
    planted = generate(train, peer_train, evals, args.records)
    print(f"generated {args.records} records ({train.stat().st_size / 2**20:.1f} MiB), planted {planted}")

    cli = Path(sys.executable).with_name("inspect-tinker")
    ours = run_child([str(cli), "data", "check", str(train), "--eval", str(evals),
                      "--base-model", args.base_model, "--output", str(workdir / "report.json")])
    report = json.loads((workdir / "report.json").read_text())
    ours["examples"], ours["dropped"] = report["examples"], report["dropped"]
    del ours["output"]
    print("ours:", json.dumps(ours))

    theirs = run_child([sys.executable, __file__, "--peer-only", str(peer_train), "--base-model", args.base_model],
                       env={"HF_DATASETS_CACHE": str(workdir / "hf-cache"), "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"})
    theirs.update(json.loads(theirs.pop("output").strip().splitlines()[-1]))
    print("peer (datasets + datasketch):", json.dumps(theirs))

    import datasets
    import datasketch

    from inspect_tinker.provider.precision import cpu_model_name  # after the measurements: it imports torch

    result = {
        "records": args.records, "file_mib": round(train.stat().st_size / 2**20, 1), "planted": planted,
        "ours": ours, "peer": theirs,
        "machine": f"{cpu_model_name()} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": {"datasets": datasets.__version__, "datasketch": datasketch.__version__},
    }
    (workdir / "result.json").write_text(json.dumps(result, indent=2))
    print(f"result: {workdir / 'result.json'}")
    if args.breakdown:
        for kind in ("near", "plain"):
            subprocess.run([sys.executable, __file__, "--workdir", str(workdir), "--base-model", args.base_model,
                            "--breakdown-only", kind], check=True)


if __name__ == "__main__":
    main()
