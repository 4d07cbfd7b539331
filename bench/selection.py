"""Failure-driven data selection on a pool nobody tuned it to: does what it adds pay off?

Each seed generates its own world (bench/selection.py `make_world`): made-up places and ships,
every one with the same facts asked the same ways ("What is the capital of X?", "Who built
the X?"), so nearly every pool record is a look-alike of some target. A few target
entities are asked about by the evaluation, in other words than the records use (paraphrased
questions). Half the facts it asks are in the training file; the other half are hidden in
the candidate pool among some 250 records: the same templates over the other entities, the
targets' own facts that nobody asks, everyday records, and one evaluation question copied
word for word (decontamination must drop it).

Three arms, same rounds, same seed, the bundled model:
- off:   the training file only (no candidate pool): the hidden facts are unknowable;
- on:    the training file and the candidate pool (failure-driven selection);
- given: the training file plus the hidden facts' pool records from the start: what the
         selection could at best have achieved, one round earlier.

Reported per seed and over seeds: each round's score; the gain of on over off after the
last round with a paired 95 % interval over the evaluation questions of every seed
(evals/paired.py) and McNemar's exact p-value; the precision of the additions (the share of
added records that state the fact of the failure they were added for); the rounds to the
bar. Goal (issue 19): on reaches the bar, or the score given reaches, in no more rounds
than given plus one, with precision at least 0.8.

Run: .venv/bin/python bench/selection.py [--seeds 0 1 2] [--rounds 3] [--workdir DIR] [--json FILE]
Results are recorded in bench/README.md. tests/integration/test_selection_proof.py runs the
same comparison (off and on) on one smaller world.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from inspect_tinker.evals.paired import PairedComparison, compare_paired

SYLLABLES = ["qu", "es", "sa", "bre", "vo", "ni", "tel", "mo", "ra", "ka", "lin", "dor", "vel", "zan", "pe", "ros",
             "tu", "gar", "mi", "sel", "ob", "den", "ha", "lu", "cor", "fen", "ti", "wy", "bar", "ul"]
FOODS = ["stew", "pie", "soup", "bread", "dumplings", "porridge", "cake", "fritters"]
FLAVOURS = ["plum", "smoked eel", "barley", "onion", "walnut", "saffron", "leek", "honey"]
CARGO = ["salt", "timber", "wool", "copper", "tea", "coal", "grain", "marble", "spices", "glass"]

# Facts of a place: (attribute, record questions, answer sentence, evaluation paraphrase,
# confirmation paraphrase, the answer's kind). The paraphrases keep one content word of the
# record (capital, founded, mountain ...): a lexical retriever cannot match a question that
# shares no word but the name with its answer (`retrieval: embedding` is for that).
PLACE_FACTS = [
    ("capital", ["What is the capital of {e}?", "Which city is the capital of {e}?"], "The capital of {e} is {v}.",
     "Which town serves as the capital of {e}?", "Name the capital of {e}.", "city"),
    ("founder", ["Who founded {e}?", "Tell me who founded {e}."], "{e} was founded by {v}.",
     "Which person founded {e}?", "By whom was {e} founded?", "person"),
    ("mountain", ["What is the highest mountain in {e}?", "Which mountain is the tallest in {e}?"],
     "The highest mountain in {e} is {v}.", "Which mountain is the highest one in {e}?",
     "Name the highest mountain of {e}.", "mountain"),
    ("river", ["What is the longest river in {e}?", "Which river is the longest in {e}?"],
     "The longest river in {e} is the {v}.", "Name the longest river of {e}.",
     "Which is the longest river found in {e}?", "river"),
    ("dish", ["What is the national dish of {e}?", "Which dish is eaten most in {e}?"],
     "The national dish of {e} is {v}.", "Which food is the national dish of {e}?",
     "What do people in {e} call their national dish?", "dish"),
    ("language", ["What language is spoken in {e}?", "Which language do people speak in {e}?"],
     "People in {e} speak {v}.", "Which language is spoken by the people of {e}?",
     "In {e}, what language is spoken?", "language"),
    ("currency", ["What currency does {e} use?", "What is the currency of {e}?"], "{e} pays with the {v}.",
     "Which currency is used in {e}?", "What is the name of the currency of {e}?", "currency"),
]
SHIP_FACTS = [
    ("builder", ["Who built the {e}?", "Which shipwright built the {e}?"], "The {e} was built by {v}.",
     "Which person built the ship {e}?", "By whom was the {e} built?", "person"),
    ("port", ["What is the home port of the {e}?", "Where is the {e}'s home port?"], "The home port of the {e} is {v}.",
     "Which town is the home port of the {e}?", "Name the home port of the {e}.", "city"),
    ("captain", ["Who is the captain of the {e}?", "Who captains the {e}?"], "The captain of the {e} is {v}.",
     "Which sailor is the captain of the {e}?", "Name the captain of the {e}.", "person"),
    ("cargo", ["What cargo does the {e} carry?", "What does the {e} carry as cargo?"], "The {e} carries {v}.",
     "Which cargo is carried by the {e}?", "Name the cargo of the {e}.", "cargo"),
]
# Facts nobody asks about: look-alikes about the target entities themselves.
UNASKED = [
    ("When is the harvest festival of {e}?", "The harvest festival of {e} is held every October."),
    ("How many people live in {e}?", "About forty thousand people live in {e}."),
    ("What is the weather like in {e}?", "{e} has mild, rainy winters and cool summers."),
    ("How old is the {e}?", "The {e} is ninety years old."),
]
EVERYDAY = [
    ("How do you make a cup of tea?", "Steep tea leaves in hot water for three minutes."),
    ("What is the boiling point of water?", "Water boils at 100 degrees Celsius at sea level."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What is photosynthesis?", "Plants turn light, water and carbon dioxide into sugar and oxygen."),
    ("Give me a tip for better sleep.", "Keep a regular bedtime and avoid screens late at night."),
    ("What is the largest planet?", "Jupiter is the largest planet in the solar system."),
    ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
    ("How far away is the Moon?", "The Moon is about 384,000 kilometres from Earth."),
    # Words of the evaluation's paraphrases in records about something else.
    ("How many does this recipe serve?", "This recipe serves four people as a main course."),
    ("When does the town hall open?", "The town hall opens at nine in the morning."),
    ("How much sleep does a person need?", "An adult person needs seven to nine hours of sleep."),
    ("What knot do sailors use most?", "Sailors use the bowline more than any other knot."),
    ("How long does food keep in a fridge?", "Cooked food keeps for three to four days in a fridge."),
    ("Which is the longest bridge in the world?", "The Danyang-Kunshan bridge, 164 km long, is the longest."),
]


@dataclass
class Fact:
    entity: str
    kind: str  # "place" or "ship"
    attribute: str
    value: str
    records: list[tuple[str, str]]  # (question, answer) training records that state it
    question: str  # how the evaluation asks it
    confirm: str  # how the confirmation task asks it

    @property
    def id(self) -> str:
        return f"{self.entity}-{self.attribute}".lower().replace(" ", "_")


@dataclass
class World:
    """One generated data set: what each arm trains on and what the evaluation asks."""

    train: list[tuple[str, str]]
    pool: list[tuple[str, str]]
    eval: list[dict]  # {"id", "question", "answer"}: the gate
    confirm: list[dict]  # the same facts asked another way: reported, never gates or selects
    hidden: list[Fact]  # asked facts only the pool states
    known: list[Fact]  # asked facts the training file states
    targets: dict[int, str] = field(default_factory=dict)  # pool line (1-based) -> the fact id it states
    copied_line: int = 0  # the pool line holding an evaluation question word for word


def make_world(seed: int, *, places: int = 18, ships: int = 10, asked: int = 10, nameless: bool = False) -> World:
    """A world of made-up `places` and `ships`, three of them targets with `asked` facts asked
    (half in the training file, half hidden in the pool), from `seed`. `nameless`: the second
    world, whose pool states the hidden facts, and the targets' unasked facts, without naming
    the entity ("The capital of the island is X.", issue 27's "the night service" record)."""
    rng = random.Random(seed)
    names = _names(rng, places + ships + 200)
    entity_names = {"place": [names.pop() for _ in range(places)], "ship": [names.pop() for _ in range(ships)]}

    def value(kind: str) -> str:
        if kind in ("city", "currency"):
            return names.pop() if kind == "city" else names.pop().lower()
        if kind == "person":
            return f"{names.pop()} {names.pop()}"
        if kind == "mountain":
            return f"Mount {names.pop()}"
        if kind == "river":
            return names.pop()
        if kind == "dish":
            return f"{rng.choice(FLAVOURS)} {rng.choice(FOODS)}"
        if kind == "language":
            return f"Old {names.pop()}"
        return rng.choice(CARGO)

    def facts_of(entity: str, kind: str) -> list[Fact]:
        table = PLACE_FACTS if kind == "place" else SHIP_FACTS
        out = []
        for attribute, questions, answer, paraphrase, confirm, value_kind in table:
            v = value(value_kind)
            fill = {"e": entity, "v": v}
            # Every fact is stated once or twice, so that the targets' two records do not stand out.
            stated = questions if rng.random() < 0.5 else questions[:1]
            out.append(Fact(entity, kind, attribute, v, [(q.format(**fill), answer.format(**fill)) for q in stated],
                            paraphrase.format(**fill), confirm.format(**fill)))
        return out

    facts = {e: facts_of(e, "place") for e in entity_names["place"]} | {e: facts_of(e, "ship") for e in entity_names["ship"]}
    targets = entity_names["place"][:2] + entity_names["ship"][:1]
    for entity in targets:  # the targets' facts are stated twice, like those the training file teaches
        for fact in facts[entity]:
            fact.records = [(q.format(e=entity, v=fact.value), fact.records[0][1]) for q in _table(fact)[1]]
    candidates = [f for e in targets for f in facts[e]]
    rng.shuffle(candidates)
    asked_facts = candidates[:asked]
    if nameless:
        # At most one asked fact per attribute: two targets' capitals stated without their names
        # ("The capital of the island is X.", twice) would be the same statement about two
        # places, which no reader, and no rule on the text, can tell apart (bench/README.md).
        asked_facts = [f for n, f in enumerate(candidates) if f.attribute not in {g.attribute for g in candidates[:n]}]
        asked_facts = asked_facts[:asked]
    known, hidden = asked_facts[: asked // 2], asked_facts[asked // 2:]
    if nameless:
        for fact in hidden:
            _, questions, answer, *_ = _table(fact)
            fact.records = [(_unnamed(q, fact.kind, fact.value), _unnamed(answer, fact.kind, fact.value)) for q in questions]

    pool: list[tuple[tuple[str, str], str | None]] = []
    for entity, entity_facts in facts.items():
        for fact in entity_facts:
            if fact in known:
                continue
            stated_id = fact.id if fact in hidden else None
            pool += [(r, stated_id) for r in fact.records]
    for entity in targets:
        kind = "place" if entity in entity_names["place"] else "ship"
        for q, a in UNASKED:
            if ("the {e}" in q) == (kind == "ship"):
                record = (_unnamed(q, kind), _unnamed(a, kind)) if nameless else (q.format(e=entity), a.format(e=entity))
                pool.append((record, None))
    pool += [(r, None) for r in EVERYDAY]
    copied = rng.choice(hidden)  # the evaluation's own question, word for word, with its answer
    pool.append(((copied.question, copied.value), "copied"))
    rng.shuffle(pool)

    train = [r for f in known for r in f.records]
    rng.shuffle(train)
    return World(
        train=train, pool=[r for r, _ in pool],
        eval=[{"id": f.id, "question": f.question, "answer": _answer(f)} for f in asked_facts],
        confirm=[{"id": f.id, "question": f.confirm, "answer": _answer(f)} for f in asked_facts],
        hidden=hidden, known=known,
        targets={n: stated for n, (_, stated) in enumerate(pool, 1) if stated and stated != "copied"},
        copied_line=next(n for n, (_, stated) in enumerate(pool, 1) if stated == "copied"),
    )


def _unnamed(template: str, kind: str, value: str = "") -> str:
    """`template` about "the island" or "the ship" instead of a named entity."""
    text = template.format(e="ship" if kind == "ship" else "the island", v=value)
    return text[0].upper() + text[1:]


def _table(fact: Fact):
    return next(row for row in (PLACE_FACTS if fact.kind == "place" else SHIP_FACTS) if row[0] == fact.attribute)


def _answer(fact: Fact) -> str:
    return fact.value.removeprefix("Mount ") if fact.attribute == "mountain" else fact.value


def _names(rng: random.Random, n: int) -> list[str]:
    """`n` distinct made-up names of two or three syllables."""
    seen: set[str] = set()
    while len(seen) < n:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3))))
        if len(word) >= 4:
            seen.add(word.capitalize())
    out = sorted(seen)
    rng.shuffle(out)
    return out

# The run every arm makes: the proof test's settings (tests/integration/test_selection_proof.py),
# which teach the bundled model a handful of facts in a round on 2 CPU cores.
RUN = {
    "select_per_round": 10, "eval_threshold": 0.9, "steps_per_round": 12, "batch_size": 8,
    "learning_rate": 2e-3, "lr_decay": 0.6, "max_seq_length": 128, "generation": {"max_tokens": 20},
    "regression_guard": False, "output_dir": "runs",
}
ARMS = ("off", "on", "given")


def write_world(world: World, root: Path, arm: str, *, seed: int, rounds: int, **overrides) -> Path:
    """The files of one arm of `world` under `root`; returns its config."""
    root.mkdir(parents=True, exist_ok=True)

    def jsonl(name: str, rows: list[dict]) -> None:
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))

    train = world.train + ([r for f in world.hidden for r in f.records] if arm == "given" else [])
    jsonl("train.jsonl", [{"instruction": q, "output": a} for q, a in train])
    jsonl("pool.jsonl", [{"instruction": q, "output": a} for q, a in world.pool])
    jsonl("eval.jsonl", world.eval)
    jsonl("confirm.jsonl", world.confirm)
    config = {
        "train_file": "train.jsonl", "run_name": arm, "seed": seed, "max_rounds": rounds,
        "eval_tasks": [{"name": "facts", "path": "eval.jsonl"},
                       {"name": "confirm", "path": "confirm.jsonl", "role": "confirm"}],
        "candidate_file": "pool.jsonl" if arm == "on" else None, **RUN, **overrides,
    }
    path = root / f"{arm}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_arm(world: World, root: Path, arm: str, *, seed: int, rounds: int, **overrides) -> dict:
    """Run one arm for `rounds` rounds (a run that meets the bar stops: its last score stands for
    the rounds it did not need); its scores per round (the baseline first), the confirmation
    scores and, for `on`, the precision of what it added."""
    from inspect_tinker.config import load_config
    from inspect_tinker.loop.session import run

    summary = run(load_config(write_world(world, root, arm, seed=seed, rounds=rounds, **overrides)))
    events = [json.loads(line) for line in (Path(summary["run_dir"]) / "events.jsonl").read_text().splitlines()]
    evals = {e["round"]: e for e in events if e["event"] == "eval_result"}
    added = [e for e in events if e["event"] == "data_added" and e["action"] == "added"]
    right = [e for e in added if world.targets.get(int(e["where"].rsplit(":", 1)[1])) == e["sample_id"]]
    scores = [r["score"] for r in summary["rounds"]]
    last = evals[max(evals)]  # a run that met the bar early: its last evaluation stands for the rounds after
    confirm = [_task_score(evals[n], "confirm") for n in sorted(evals)]
    evaluations = rounds + (summary["rounds"][0]["round"] == 0)  # the baseline, when there was one
    return {
        "arm": arm, "seed": seed, "bar_met_in": summary["rounds_run"] if summary["bar_met"] else None,
        "scores": scores + scores[-1:] * (evaluations - len(scores)),
        "confirm": confirm + confirm[-1:] * (evaluations - len(confirm)),
        "samples": {s["id"]: s["value"] for s in _task(last, "facts")["samples"]},  # the gain's pairs
        "added": len(added), "added_right": len(right),
        "added_per_round": [sum(e["round"] == n for e in added) for n in range(1, rounds + 1)],
        "refused": sum(e["event"] == "data_refused" and not e.get("nearest") for e in events),
        "copied_added": any(e["where"].endswith(f":{world.copied_line}") for e in added),
        "seconds": summary["wall_seconds"],
    }


def _task(evaluation: dict, name: str) -> dict:
    return next(t for t in evaluation["tasks"] if t["name"] == name)


def _task_score(evaluation: dict, name: str) -> float:
    return _task(evaluation, name)["score"]


def rounds_to(scores: list[float], bar: float) -> int | None:
    """The first trained round (1-based) scoring at least `bar`; None when none does."""
    return next((n for n, s in enumerate(scores[1:], 1) if s >= bar - 1e-9), None)


def paired_gain(results: list[dict], better: str = "on", worse: str = "off") -> PairedComparison | None:
    """`better` against `worse` after the last round, paired on (seed, evaluation question) over every
    seed both ran: each seed's world asks its own questions, so the pairs pool across seeds, and
    seeds with equal gains still leave the spread between questions in the interval."""
    by = {(r["arm"], r["seed"]): r for r in results}
    seeds = sorted(s for a, s in by if a == worse and (better, s) in by)
    if not seeds:
        return None
    pairs = lambda arm: {(s, i): v for s in seeds for i, v in by[(arm, s)]["samples"].items()}
    return compare_paired(pairs(worse), pairs(better))


def report(results: list[dict], bar: float) -> str:
    """A markdown summary of `results` (every arm of every seed)."""
    by = {(r["arm"], r["seed"]): r for r in results}
    seeds = sorted({r["seed"] for r in results})
    lines = ["| seed | off | on | given | on: added (right) per round | refused | confirm on |",
             "|---|---|---|---|---|---|---|"]
    for seed in seeds:
        off, on, given = (by.get((a, seed)) for a in ARMS)
        fmt = lambda r: " → ".join(f"{s:.2f}" for s in r["scores"]) if r else "not run"
        lines.append(
            f"| {seed} | {fmt(off)} | {fmt(on)} | {fmt(given)} | "
            f"{on['added_per_round'] if on else ''} ({on['added_right'] if on else ''}) | {on['refused'] if on else ''} | "
            f"{' → '.join(f'{s:.2f}' for s in on['confirm']) if on else ''} |"
        )
    if gain := paired_gain(results):
        runs = sum(("on", s) in by and ("off", s) in by for s in seeds)
        lines.append(f"\nGain of on over off after the last round: {gain.difference:+.3f}, paired 95 % interval "
                     f"[{gain.ci_low:+.3f}, {gain.ci_high:+.3f}] over {gain.n} questions of {runs} seed(s); "
                     f"fixed {len(gain.fixed)}, broke {len(gain.broke)}, McNemar exact p = {gain.p_value:.3g}")
    ons = [by[("on", s)] for s in seeds if ("on", s) in by]
    if ons:
        added = sum(r["added"] for r in ons)
        right = sum(r["added_right"] for r in ons)
        lines.append(f"Precision of the additions: {right}/{added} = {right / max(added, 1):.2f}; "
                     f"an evaluation question copied into the pool added: {any(r['copied_added'] for r in ons)}")
    for seed in seeds:
        if ("on", seed) in by and ("given", seed) in by:
            on, given = by[("on", seed)]["scores"], by[("given", seed)]["scores"]
            ceiling = max(given[1:])
            lines.append(f"seed {seed}: rounds to the bar {bar:g}: on {rounds_to(on, bar)}, given {rounds_to(given, bar)}; "
                         f"to given's best {ceiling:.2f}: on {rounds_to(on, ceiling)}, given {rounds_to(given, ceiling)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--nameless", action="store_true",
                        help="the second world: the pool states the hidden facts without the entity's name")
    parser.add_argument("--focus-weight", type=int, default=None,
                        help="the config's focus_weight (unset: the config's default; the 2026-12-08 runs used 3)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every arm's results here (appended per run)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-selection-"))
    results = []
    for seed in args.seeds:
        world = make_world(seed, nameless=args.nameless)
        for arm in args.arms:
            result = run_arm(world, workdir / f"seed{seed}" / arm, arm, seed=seed, rounds=args.rounds,
                             **({} if args.focus_weight is None else {"focus_weight": args.focus_weight}))
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    print(report(results, RUN["eval_threshold"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
