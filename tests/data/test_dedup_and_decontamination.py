"""The text phase of the data step catches planted duplicates, near duplicates and copied
evaluation questions, and keeps paraphrases and distinct records."""

import json
from pathlib import Path

import pytest

from inspect_tinker.data.decontamination import ContaminationIndex, EvalInput, evaluation_inputs
from inspect_tinker.data.normalize import normalize_conversation
from inspect_tinker.data.prepare import check_training_records
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.demo import DEMO_DIR as DEMO
from inspect_tinker.evals.qa import qa

PASSAGE = (
    "The old harbour of Corrabay was rebuilt after the great storm of the ninth year, when the council "
    "of five ordered new stone piers and a lighthouse that still guides the salt ships home at night."
)
LONG_DOC = " ".join(f"Sentence number {i} of a long training document talks about tides and salt." for i in range(10))


def demo_tasks():
    return [qa(path=str(DEMO / "eval.jsonl"), name="valdoria_facts")]


def write(tmp_path, records, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def check(path, tasks=(), **settings):
    return check_training_records(path, DataConfig(**settings), evaluation_inputs(tasks))


def test_the_evaluation_inputs_come_from_the_built_inspect_tasks():
    inputs = evaluation_inputs(demo_tasks())
    assert len(inputs) == 12
    assert inputs[0] == EvalInput("valdoria_facts", "capital", "Which city serves as the capital of Valdoria?")


def test_chat_message_inputs_of_any_task_kind_are_taken_without_their_system_prompt():
    from inspect_ai import Task
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.model import ChatMessageSystem, ChatMessageUser

    sample = Sample(input=[ChatMessageSystem(content="Answer briefly."), ChatMessageUser(content="Name Valdoria's longest river.")])
    task = Task(dataset=MemoryDataset([sample]), name="chat_task")
    assert evaluation_inputs([task]) == [EvalInput("chat_task", "1", "Name Valdoria's longest river.")]


def test_planted_duplicates_near_duplicates_and_copied_eval_questions_are_caught(tmp_path):
    clean = [json.loads(line) for line in (DEMO / "train.jsonl").read_text().splitlines() if line.startswith('{"instruction"') and line.endswith("}")]
    clean = [r for r in clean if r["output"]]
    long_answer = {"instruction": "Tell me about the harbour of Corrabay.", "output": LONG_DOC}
    planted = clean + [
        long_answer,
        clean[0],                                                                          # exact copy
        {"instruction": clean[2]["instruction"].upper() + "!!", "output": clean[2]["output"]},  # same after normalising
        {**long_answer, "output": LONG_DOC.replace("number 7", "number seven")},           # near duplicate
        {"instruction": "Which city serves as the capital of Valdoria?", "output": "Mirenholt."},  # eval question copied
        {"prompt": "Quiz! Which person founded the nation of Valdoria? Answer in one line.", "completion": "Ilsa Drummond."},
    ]
    checked = check(write(tmp_path, planted), demo_tasks())
    report = checked.report
    n = len(clean)
    assert report.dropped["exact_duplicate"] == 2 and report.dropped["near_duplicate"] == 1
    assert report.dropped["contaminated"] == 2
    assert len(checked.conversations) == n + 1
    clusters = list(report.duplicate_clusters.values())
    assert {"kind": "exact", "kept": "line 1", "duplicates": [f"line {n + 2}"]} in clusters
    assert {"kind": "exact", "kept": "line 3", "duplicates": [f"line {n + 3}"]} in clusters
    near = next(c for c in clusters if c["kind"] == "near")
    assert near["kept"] == f"line {n + 1}" and near["duplicates"][0]["where"] == f"line {n + 4}"
    assert near["duplicates"][0]["similarity"] >= 0.8
    hits = {(h["where"], h["sample_id"]) for h in report.contamination_hits}
    assert hits == {(f"line {n + 5}", "capital"), (f"line {n + 6}", "founder")}
    assert all(h["task"] == "valdoria_facts" and h["dropped"] for h in report.contamination_hits)


def test_the_demo_data_paraphrases_its_evaluation_and_loses_only_its_two_invalid_lines():
    checked = check(DEMO / "train.jsonl", demo_tasks())
    assert checked.report.dropped_total == checked.report.dropped["invalid"] == 2
    assert not checked.report.contamination_hits and not checked.report.duplicate_clusters


def test_a_passage_shared_over_13_words_is_contamination_and_a_shorter_overlap_is_not():
    index = ContaminationIndex([EvalInput("reading", "p1", PASSAGE)])
    words = PASSAGE.split()

    def hits(text):
        return index.hits(normalize_conversation([{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]))

    assert hits(f"Summarise this: {' '.join(words[5:18])} and more of my own words.")  # 13 words copied
    assert not hits(f"Summarise this: {' '.join(words[5:17])} and more of my own words.")  # 12 words
    assert hits(PASSAGE.upper())  # case and punctuation do not hide a copy


def test_short_evaluation_inputs_must_appear_whole_and_tiny_ones_are_not_checked():
    index = ContaminationIndex([EvalInput("qa", "1", "Name Valdoria's longest river."), EvalInput("qa", "2", "Hi there")])
    assert index.too_short == 1

    def hits(text):
        return index.hits(normalize_conversation([{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]))

    assert [h.sample_id for h in hits("Quiz: name valdoria's longest river")] == ["1"]
    assert not hits("Name Valdoria's river.") and not hits("hi there, how are you?")


@pytest.mark.parametrize(("action", "kept", "dropped"), [("warn", 2, 0), ("off", 2, 0), ("drop", 1, 1)])
def test_decontamination_drops_warns_or_is_off(tmp_path, action, kept, dropped):
    path = write(tmp_path, [{"instruction": "Which city serves as the capital of Valdoria?", "output": "Mirenholt."},
                            {"instruction": "What is 2 + 2?", "output": "Four."}])
    report = check(path, demo_tasks(), decontamination=action).report
    assert report.dropped["contaminated"] == dropped and report.records - report.dropped_total == kept
    assert len(report.contamination_hits) == (0 if action == "off" else 1)


def test_dedup_can_be_turned_off_and_its_threshold_set(tmp_path):
    records = [{"instruction": "Tell me about the harbour.", "output": LONG_DOC}] * 2
    records.append({"instruction": "Tell me about the harbour.", "output": LONG_DOC.replace("tides", "waves", 3)})
    path = write(tmp_path, records)
    assert check(path).report.dropped["exact_duplicate"] == 1
    assert check(path, exact_dedup=False, near_duplicate_threshold=None).report.dropped_total == 0
    assert check(path, exact_dedup=False).report.dropped["near_duplicate"] == 2
    assert check(path, near_duplicate_threshold=0.98).report.dropped["near_duplicate"] == 0


def test_distinct_short_facts_phrased_alike_are_not_near_duplicates(tmp_path):
    facts = [("capital", "Mirenholt"), ("largest port", "Corrabay"), ("oldest city", "Aldmere"), ("holy city", "Tessaly")]
    path = write(tmp_path, [{"instruction": f"What is the {k} of Valdoria?", "output": f"The {k} of Valdoria is {v}."} for k, v in facts])
    assert check(path).report.dropped_total == 0


def test_progress_is_reported_every_thousand_records_and_at_the_end(tmp_path):
    path = write(tmp_path, [{"instruction": f"Question {i}?", "output": f"Answer {i} is {i * 7}."} for i in range(2500)])
    calls = []
    check_training_records(path, DataConfig(), [], progress=lambda **kw: calls.append(kw))
    assert [c["done"] for c in calls] == [1000, 2000, 2500]
    assert {c["stage"] for c in calls} == {"checking"} and calls[-1]["total"] == 2500
