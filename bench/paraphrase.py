"""Does template paraphrase augmentation of the training questions (no model) make recall under
paraphrase faster? (issue 27, section 2)

Every training record's question is rewritten by a few English templates that keep its content
words ("What is the capital of X?" -> "Name the capital of X.", "Which city is the capital of
X?" -> "What city is the capital of X?", "Who founded X?" -> "Which person founded X?", plus
"Tell me: ..." and "Do you know ...") and each rewrite is added as a record with the same
answer. Peer, same run: the same configuration without the added records. Both arms run the
packaged demo (its paraphrased gate questions, its bar, its rounds) on the bundled model;
reported: each round's score, the rounds to the bar, and the paired comparison of the gate's
questions after round 1 and after the last round both arms ran (evals/paired.py).

Run: .venv/bin/python bench/paraphrase.py [--rounds 4] [--arms plain augmented] [--no-baseline] [--workdir DIR] [--json FILE]
The result is written in bench/README.md; the augmentation was kept out of the package unless it
pays (it did not: see there).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

from inspect_tinker.evals.paired import compare_paired

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"

# (pattern on the question, rewrite): each keeps the question's content words in other function words.
TEMPLATES = [
    (r"^What is the (.+)\?$", r"Name the \1."),
    (r"^What is (.+)\?$", r"Tell me what \1 is."),
    (r"^Which (\w+) (.+)\?$", r"What \1 \2?"),
    (r"^What (\w+) (is|are|does|do) (.+)\?$", r"Which \1 \2 \3?"),
    (r"^Who (.+)\?$", r"Which person \1?"),
    (r"^(.+)\?$", r"Tell me: \1?"),
    (r"^(.+)\?$", r"Do you know this: \1?"),
]


def paraphrases(question: str) -> list[str]:
    """The template rewrites of `question` (each different from it and from each other)."""
    out: list[str] = []
    for pattern, rewrite in TEMPLATES:
        if re.match(pattern, question):
            text = re.sub(pattern, rewrite, question)
            if text != question and text not in out:
                out.append(text)
    return out


def augmented(records: list[dict]) -> list[dict]:
    """`records` (instruction/output) and, after each, its question's rewrites with the same answer."""
    out = []
    for record in records:
        out.append(record)
        out += [{**record, "instruction": q} for q in paraphrases(record["instruction"])]
    return out


def run_arm(root: Path, arm: str, rounds: int, baseline: bool = True) -> dict:
    from inspect_tinker.config import load_config
    from inspect_tinker.loop.session import run

    folder = root / arm
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("*.py", "README.md"))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    if arm == "augmented":
        lines = (folder / "train.jsonl").read_text().splitlines()
        records, bad = [], []
        for line in lines:  # the demo's file holds invalid lines on purpose: they stay as they are
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                bad.append(line)
        valid = [r for r in records if isinstance(r.get("instruction"), str) and r["instruction"].endswith("?")]
        rest = [r for r in records if r not in valid]
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in augmented(valid) + rest)
                                            + "".join(line + "\n" for line in bad))
    config.update(max_rounds=rounds, run_name=arm, output_dir=str(folder / "runs"), baseline_eval=baseline)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    summary = run(load_config(folder / "config.yaml"))
    events = [json.loads(line) for line in (Path(summary["run_dir"]) / "events.jsonl").read_text().splitlines()]
    evals = {e["round"]: e for e in events if e["event"] == "eval_result"}
    gate = lambda n: {(t["name"], s["id"]): s["value"] for t in evals[n]["tasks"] if t["role"] == "gate" for s in t["samples"]}
    return {"arm": arm, "scores": [r["score"] for r in summary["rounds"]],
            "bar_met_in": summary["rounds_run"] if summary["bar_met"] else None,
            "samples": {n: {f"{k[0]}/{k[1]}": v for k, v in gate(n).items()} for n in sorted(evals)},
            "seconds": summary["wall_seconds"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--arms", nargs="+", choices=("plain", "augmented"), default=["plain", "augmented"])
    parser.add_argument("--no-baseline", action="store_true", help="skip round 0 (the base model scores the same in both arms)")
    args = parser.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="bench-paraphrase-"))
    results = []
    for arm in args.arms:
        results.append(run_arm(root, arm, args.rounds, baseline=not args.no_baseline))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "samples"}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    for r in results:
        print(f"{r['arm']}: scores {' → '.join(f'{s:.3f}' for s in r['scores'])}, bar met in round {r['bar_met_in']}")
    if len(results) < 2:
        return 0
    plain, aug = results
    for n in sorted(set(plain["samples"]) & set(aug["samples"]) - {0}):
        c = compare_paired(plain["samples"][n], aug["samples"][n])
        print(f"round {n}, augmented - plain: {c.difference:+.3f}, paired 95 % interval [{c.ci_low:+.3f}, "
              f"{c.ci_high:+.3f}] over {c.n} gate questions; fixed {len(c.fixed)}, broke {len(c.broke)}, "
              f"McNemar exact p = {c.p_value:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
