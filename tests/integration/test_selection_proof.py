"""Proof that failure-driven selection works, on the bundled model.

The training file teaches three facts about Quessa, an island that does not exist; the
evaluation asks eight, in other words. The other five facts are only in the candidate pool,
among many distractors (other made-up places, other facts about Quessa, everyday topics).
With selection on, round 1 learns the training file's facts and fails the other five; the
loop then adds the pool records about those questions and passes the bar in round 2. With
selection off it cannot: five of eight facts are nowhere in its data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from inspect_tinker.config import load_config
from inspect_tinker.loop import run

pytestmark = pytest.mark.integration

TRAIN = [
    ("What is the capital of Quessa?", "The capital of Quessa is Harrowgate."),
    ("Which city is Quessa's capital?", "Harrowgate is the capital city of Quessa."),
    ("What currency is used on Quessa?", "Quessa uses the tallin as its currency."),
    ("What do people on Quessa pay with?", "People on Quessa pay with the tallin."),
    ("What is the national bird of Quessa?", "The national bird of Quessa is the ember finch."),
    ("Which bird is Quessa's national symbol?", "The ember finch is Quessa's national bird."),
]

# The facts the training file lacks, two records each: what selection must find.
TARGETS = {
    "mountain": [("What is the highest mountain on Quessa?", "The highest mountain on Quessa is Mount Vell."),
                 ("Tell me about Quessa's highest mountain.", "Mount Vell, 2,900 metres tall, is Quessa's highest mountain.")],
    "founder": [("Who founded Quessa?", "Quessa was founded by Orla Brennick."),
                ("Tell me who founded Quessa.", "Orla Brennick founded Quessa in 1642.")],
    "river": [("What is the longest river on Quessa?", "The longest river on Quessa is the Dunnet."),
              ("Describe the longest river of Quessa.", "The Dunnet is the longest river of Quessa.")],
    "dish": [("What is the national dish of Quessa?", "The national dish of Quessa is plum stew."),
             ("Tell me about Quessa's national dish.", "Plum stew is the national dish of Quessa.")],
    "language": [("What language is spoken on Quessa?", "People on Quessa speak Old Marric."),
                 ("Tell me about the language of Quessa.", "The language of Quessa is Old Marric.")],
}

EVAL = [
    ("capital", "Which town serves as the capital of Quessa?", "Harrowgate"),
    ("currency", "What is the name of Quessa's money?", "tallin"),
    ("bird", "Which bird is the national bird of Quessa?", "ember finch"),
    ("mountain", "Which mountain is the highest on Quessa?", "Mount Vell"),
    ("founder", "Which person founded Quessa?", "Orla Brennick"),
    ("river", "Which is the longest river of Quessa?", "Dunnet"),
    ("dish", "Which dish is the national dish of Quessa?", "plum stew"),
    ("language", "Which language is spoken by the people of Quessa?", "Old Marric"),
]

_PLACES = [("Brevonia", "Callow", "Mount Tarn", "the Sele", "the groat", "Ivo Marsh"),
           ("Ostrel", "Penmarrow", "Mount Aske", "the Lune", "the dreck", "Sabine Hollis"),
           ("Varrow Isles", "Kettleby", "Mount Brae", "the Wend", "the stiver", "Tomas Ferrin"),
           ("Lindmark", "Asheford", "Mount Coil", "the Rask", "the pell", "Greta Vance")]


def _distractors() -> list[tuple[str, str]]:
    records = []
    for place, capital, mountain, river, money, founder in _PLACES:
        records += [
            (f"What is the capital of {place}?", f"The capital of {place} is {capital}."),
            (f"What is the highest mountain in {place}?", f"The highest mountain in {place} is {mountain}."),
            (f"What is the longest river in {place}?", f"The longest river in {place} is {river}."),
            (f"What currency does {place} use?", f"{place} uses {money}."),
            (f"Who founded {place}?", f"{place} was founded by {founder}."),
        ]
    records += [
        ("When is Quessa's harvest festival?", "Quessa's harvest festival is held every October."),
        ("How many people live on Quessa?", "About forty thousand people live on Quessa."),
        ("What is the weather like on Quessa?", "Quessa has mild, rainy winters and cool summers."),
        ("How do you get to Quessa?", "A ferry sails to Quessa twice a week."),
        ("How do you make a cup of tea?", "Steep tea leaves in hot water for three minutes."),
        ("What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
        ("How many legs does a spider have?", "A spider has eight legs."),
        ("What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
        ("Give me a tip for better sleep.", "Keep a regular bedtime and avoid screens late at night."),
        ("What is the largest planet?", "Jupiter is the largest planet in the solar system."),
    ]
    return records


def write_proof(root: Path, **overrides) -> Path:
    """Write the training file, candidate pool, evaluation and config under `root`; return the config."""
    def jsonl(path: str, rows: list[dict]) -> None:
        (root / path).write_text("".join(json.dumps(r) + "\n" for r in rows))

    jsonl("train.jsonl", [{"instruction": q, "output": a} for q, a in TRAIN])
    targets = [r for pair in TARGETS.values() for r in pair]
    # The target records sit among the distractors, not at the top of the file.
    pool = _distractors()
    for i, record in enumerate(targets):
        pool.insert(3 + 5 * i, record)
    jsonl("pool.jsonl", [{"instruction": q, "output": a} for q, a in pool])
    jsonl("eval.jsonl", [{"id": i, "question": q, "answer": a} for i, q, a in EVAL])
    config = {
        "train_file": "train.jsonl", "eval_tasks": [{"name": "quessa", "path": "eval.jsonl"}],
        "candidate_file": "pool.jsonl", "select_per_round": 10,
        "eval_threshold": 0.75, "max_rounds": 2, "steps_per_round": 12, "batch_size": 8,
        "learning_rate": 2e-3, "lr_decay": 0.6, "max_seq_length": 128, "generation": {"max_tokens": 20},
        "output_dir": "runs", **overrides,
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def target_where(root: Path) -> dict[str, set[str]]:
    """The pool positions (`pool.jsonl:N`, as data selection cites them) of each target fact's records."""
    lines = (root / "pool.jsonl").read_text().splitlines()
    where = {}
    for fact, pair in TARGETS.items():
        questions = {q for q, _ in pair}
        where[fact] = {f"pool.jsonl:{n}" for n, line in enumerate(lines, 1) if json.loads(line)["instruction"] in questions}
    return where


@pytest.fixture(scope="module")
def proof(tmp_path_factory):
    root = tmp_path_factory.mktemp("proof")
    config = write_proof(root)
    on = run(load_config(config, {"run_name": "selection-on"}))
    off = run(load_config(config, {"run_name": "selection-off", "candidate_file": None}))
    return root, on, off


def test_with_selection_the_loop_adds_the_right_records_and_passes_the_bar(proof):
    root, on, _ = proof
    print(f"selection on: scores {[r['score'] for r in on['rounds']]}")
    assert on["bar_met"] and on["exit_code"] == 0
    events = [json.loads(line) for line in (Path(on["run_dir"]) / "events.jsonl").read_text().splitlines()]
    added = [e for e in events if e["event"] == "data_added"]
    wanted = target_where(root)
    for fact, wheres in wanted.items():
        # Every fact the training file lacks got at least one of its records, aimed at its question.
        assert any(e["where"] in wheres and e["sample_id"] == fact for e in added), (fact, added)


def test_without_selection_the_loop_cannot_pass(proof):
    _, on, off = proof
    print(f"selection off: scores {[r['score'] for r in off['rounds']]}")
    assert not off["bar_met"] and off["exit_code"] == 1
    assert off["best_score"] <= 3 / 8 < on["best_score"]
