"""Adapting between rounds, in the loop on the tiny model: policies that change the next round's
steps and LoRA rank, and failure-driven data selection. Training, checkpoints and (for
selection) evaluation are real; the policy tests script the scores so the rules fire on cue."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from evalresults import scripted_scores
from local_backends import local_backend

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.loop.session import run
from inspect_tinker.report.contents import read_report_contents


def read_events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_more_steps_trains_longer_rounds_while_the_score_rises(monkeypatch, write_run_config, tmp_path):
    scripted_scores(monkeypatch, {0: 0.0, 1: 0.3, 2: 0.6, 3: 0.6})
    run(load_config(write_run_config(max_rounds=3, eval_threshold=0.9, policy="more_steps", steps_per_round=2)))
    events = read_events(tmp_path / "runs" / "test")
    steps = Counter(e["round"] for e in events if e["event"] == "step")
    assert steps == {1: 2, 2: 3, 3: 5}  # ×1.5 after each rise, rounded up
    decisions = {e["round"]: e for e in events if e["event"] == "decision"}
    assert decisions[1]["rule"] == "more_steps/raise" and "steps per round 2 → 3" in decisions[1]["reason"]


def test_grow_rank_widens_a_saturated_adapter_which_peft_then_loads(monkeypatch, write_run_config, tmp_path, tiny_model_dir):
    scripted_scores(monkeypatch, {0: 0.0, 1: 0.3, 2: 0.3, 3: 0.3})
    run(load_config(write_run_config(max_rounds=3, eval_threshold=0.9, policy="grow_rank", lora_rank=4)))
    run_dir = tmp_path / "runs" / "test"
    events = read_events(run_dir)
    decisions = {e["round"]: e for e in events if e["event"] == "decision"}
    assert decisions[1]["rule"] == "grow_rank/keep"  # rose from the baseline
    assert decisions[2]["rule"] == "grow_rank/grow" and "LoRA rank 4 → 8" in decisions[2]["reason"]
    assert [e["lora_rank"] for e in events if e["event"] == "adapter_grown"] == [8]

    def adapter_config(n):
        return json.loads((run_dir / "rounds" / str(n) / "adapter" / "adapter_config.json").read_text())

    assert (adapter_config(2)["r"], adapter_config(2)["lora_alpha"]) == (4, 32)
    assert (adapter_config(3)["r"], adapter_config(3)["lora_alpha"]) == (8, 64)  # alpha / r kept at 8
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run_dir / "rounds" / "3" / "adapter")
    assert model.peft_config["default"].r == 8


def test_growing_the_rank_keeps_the_models_outputs_and_the_global_random_state(tiny_model_dir, tokenizer):
    from inspect_tinker.data.render import render_conversation
    engine = local_backend(tiny_model_dir, lora_rank=4)
    example = render_conversation(tokenizer, [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}], 64)
    for _ in range(2):
        engine.forward_backward([example])
        engine.optim_step(1e-2)
    ids = torch.tensor([example.input_ids])
    engine.model.eval()
    with torch.no_grad():
        before = engine.model(input_ids=ids).logits
    rng = torch.get_rng_state()
    trainable = engine.info.trainable_parameters
    engine.grow_lora_rank(8)
    assert torch.equal(torch.get_rng_state(), rng)
    with torch.no_grad():
        torch.testing.assert_close(engine.model(input_ids=ids).logits, before, rtol=0, atol=0)
    assert engine.lora_rank == 8 and engine.info.trainable_parameters == 2 * trainable
    engine.forward_backward([example])
    engine.optim_step(1e-2)
    with torch.no_grad():
        assert not torch.equal(engine.model(input_ids=ids).logits, before)  # the grown adapter trains
    with pytest.raises(ValueError, match="only grow"):
        engine.grow_lora_rank(8)


POOL = [
    {"instruction": "Name the capital city of Valdoria.", "output": "Mirenholt is the capital city of Valdoria."},
    {"instruction": "Which currency is legal tender in Valdoria?", "output": "In Valdoria people pay with the crell."},
    {"instruction": "How do you bake sourdough bread?", "output": "Feed a starter, knead, proof overnight, bake hot."},
    {"instruction": "What is the boiling point of water at sea level?", "output": "100 degrees Celsius."},
    {"instruction": "Recommend a good hiking boot brand.", "output": "Many hikers like sturdy leather boots."},
    # An evaluation question word for word: decontamination keeps it out of the pool.
    {"instruction": "What is the capital of Valdoria?", "output": "Mirenholt."},
]


def test_selection_adds_pool_records_for_the_failed_questions_and_records_why(write_run_config, tmp_path, capsys):
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in POOL))
    # The eval file asks the three FACTS questions; the tiny random model fails them all.
    config = write_run_config(candidate_file="pool.jsonl", select_per_round=3, upweight_repeats=2,
                              max_rounds=2, eval_threshold=1.0)  # focus off (the fixture's): its steps are the next test's
    evals = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    for record, category in zip(evals, ["geography", "economy", None]):
        record.update({"category": category} if category else {})
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    assert main(["run", str(config)]) == 1
    run_dir = tmp_path / "runs" / "test"
    events = read_events(run_dir)
    [selected] = [e for e in events if e["event"] == "data_selected"]  # after round 1, not after the last
    assert selected["round"] == 1 and selected["failed"] == 3 and selected["added"] == 2
    assert selected["by_category"] == {
        "(no category)": {"failed": ["eval/3"], "added": [], "repeated": ["train.jsonl:3"]},  # the founder question
        "economy": {"failed": ["eval/2"], "added": ["pool.jsonl:2"], "repeated": ["train.jsonl:2"]},
        "geography": {"failed": ["eval/1"], "added": ["pool.jsonl:1"], "repeated": ["train.jsonl:1"]},
    }
    added = [e for e in events if e["event"] == "data_added"]
    picked = {e["where"]: e for e in added if e["action"] == "added"}
    assert set(picked) == {"pool.jsonl:1", "pool.jsonl:2"}  # the Valdoria records, never bread or boots
    [checked] = [e for e in events if e["event"] == "candidates_checked"]
    assert checked["dropped"]["contaminated"] == 1  # pool.jsonl:6: never a candidate, however close a match
    assert picked["pool.jsonl:2"]["sample_id"] == "2"  # the currency question
    assert all(e["score"] > 0 and e["task"] == "eval" and "score" in e["reason"] for e in added)
    repeated = [e for e in added if e["action"] == "repeated"]
    assert repeated and all(e["where"].startswith("train.jsonl:") and e["copies"] == 2 for e in repeated)

    # The founder question: the pool's Valdoria records are ranked for it and refused, none says who founded it.
    [founder] = [f for f in selected["per_failure"] if f["sample_id"] == "3"]
    assert founder["added"] == [] and founder["note"] == "nothing added: no relevant record left in the pool"
    refused = [e for e in events if e["event"] == "data_refused"]
    assert {e["where"] for e in refused if e["sample_id"] == "3"} == {"pool.jsonl:1", "pool.jsonl:2"}
    assert all("no record in the pool uses any other word" in e["reason"] for e in refused if e["sample_id"] == "3")
    # The round after the additions trains at the same rate: no decay into a round that brings new records.
    decisions = {e["round"]: e for e in events if e["event"] == "decision"}
    assert decisions[1]["rule"] == "lr_decay/decay+new_records/keep_rate" and decisions[1]["new_records"] == 2
    assert decisions[1]["next_learning_rate"] == 1e-3 and "no decay into a round that brings new data" in decisions[1]["reason"]
    assert [e["learning_rate"] for e in events if e["event"] == "round_started"] == [1e-3, 1e-3]

    state = json.loads((run_dir / "state.json").read_text())
    assert [a["where"] for a in state["data_additions"]] == [e["where"] for e in added]
    examples = {e["round"]: e["examples"] for e in events if e["event"] == "round_started"}
    assert examples == {1: 3, 2: 3 + 2 + 2 * len(repeated)}
    # The run's report lists each addition with the failure it targets.
    assert [a["where"] for a in read_report_contents(run_dir).additions] == [e["where"] for e in added]
    page = (run_dir / "report.html").read_text()
    assert "Data added from failures (%d)" % len(added) in page and "eval/2: What currency" in page
    assert "Candidates refused (%d)" % len(refused) in page and "covers 1 of" in page
    out = capsys.readouterr().out
    assert "Data selection after round 1: 3 failed questions → 2 records added" in out
    assert "+ pool.jsonl:2 for eval/2" in out and "economy: 1 failed, 1 added, 1 repeated" in out


def test_focus_draws_the_added_and_still_failing_records_more_often_with_the_steps_to_carry_them(
        write_run_config, tmp_path, capsys):
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in POOL))
    # The tiny random model fails all three questions and has learned nothing: every record's own loss is high.
    config = write_run_config(candidate_file="pool.jsonl", select_per_round=3, max_rounds=2, eval_threshold=1.0,
                              focus_weight=3, focus_loss_bound=0.05, steps_per_round=2, batch_size=2)
    assert main(["run", str(config)]) == 1
    run_dir = tmp_path / "runs" / "test"
    events = read_events(run_dir)
    [weighed] = [e for e in events if e["event"] == "focus_weighed"]  # after round 1, not after the last
    records = {r["where"]: r for r in weighed["records"]}
    # The two pool records selection added, and the training record of each failed question.
    assert set(records) == {"pool.jsonl:1", "pool.jsonl:2", "train.jsonl:1", "train.jsonl:2", "train.jsonl:3"}
    assert records["train.jsonl:2"]["why"] == "covers failed eval/2"
    assert records["pool.jsonl:1"]["why"] == "added for failed eval/1"
    assert all(r["loss"] > 0.05 and r["copies"] == 2 for r in records.values()) and weighed["unlearned"] == 5
    # 5 records × 2 extra copies = 10 examples: 5 more steps of 2 than the policy's 2.
    decisions = {e["round"]: e for e in events if e["event"] == "decision"}
    assert decisions[1]["rule"].endswith("+unlearned/more_steps") and decisions[1]["focus_steps"] == 5
    assert Counter(e["round"] for e in events if e["event"] == "step") == {1: 2, 2: 7}
    examples = {e["round"]: e["examples"] for e in events if e["event"] == "round_started"}
    assert examples == {1: 3, 2: 3 + 2 + 10}
    state = json.loads((run_dir / "state.json").read_text())
    assert [r["where"] for r in state["focus"]] == [r["where"] for r in weighed["records"]]
    assert "Focus after round 1: 5 of 5 records" in capsys.readouterr().out


def test_a_record_whose_own_loss_is_under_the_bound_is_drawn_once_and_adds_no_steps(write_run_config, tmp_path):
    config = write_run_config(max_rounds=2, eval_threshold=1.0, focus_weight=3, focus_loss_bound=100.0)
    run(load_config(config))
    events = read_events(tmp_path / "runs" / "test")
    [weighed] = [e for e in events if e["event"] == "focus_weighed"]
    assert weighed["unlearned"] == 0 and all(r["copies"] == 0 for r in weighed["records"]) and weighed["records"]
    assert Counter(e["round"] for e in events if e["event"] == "step") == {1: 2, 2: 2}
    assert not any(e["event"] == "data_selected" for e in events)  # no pool: focus alone selects nothing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--set", "policy=grow_rank", "--set", "on_regression=rollback"], "cannot be combined with on_regression"),
        (["--set", "policy=grow_rank", "--set", "max_lora_rank=8"], "max_lora_rank (8) is below lora_rank (16)"),
        (["--set", "candidate_file=missing.jsonl"], "candidate_file"),
        (["--set", "policy=shrink"], "policy: Input should be 'lr_decay', 'plateau', 'more_steps' or 'grow_rank'"),
        (["--set", "tune={learning_rates: [0.1, 0.2]}"], "did you mean 'learning_rate'"),
        (["--set", "tune.steps_per_round=[10, 2]"], "0 < low <= high"),
    ],
)
def test_bad_policy_selection_and_tune_keys_exit_2_with_one_clear_message(write_run_config, capsys, overrides, message):
    assert main(["run", str(write_run_config()), *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def per_step_rates(run_dir) -> dict[int, tuple[int, float]]:
    """Global step -> (round, learning rate), the last record of a step winning (a resumed run replays)."""
    return {e["step"]: (e["round"], e["learning_rate"]) for e in read_events(run_dir) if e["event"] == "step"}


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_more_steps_rounds_train_every_step_and_a_resumed_run_follows_the_same_curve(
    monkeypatch, write_run_config, tmp_path, schedule
):
    """Rounds of 2, 3 and 5 steps: each round's schedule spans its own steps, so none trains at rate 0."""
    from inspect_tinker.provider.local_backend import LocalBackend

    scripted_scores(monkeypatch, {0: 0.0, 1: 0.3, 2: 0.6, 3: 0.6})
    keys = dict(max_rounds=3, eval_threshold=0.9, policy="more_steps", steps_per_round=2, lr_schedule=schedule,
                learning_rate=1e-3, save_every_steps=1)
    run(load_config(write_run_config(**keys, run_name="whole")))
    whole = per_step_rates(tmp_path / "runs" / "whole")
    shape = {"constant": lambda k, n: 1.0, "linear": lambda k, n: 1 - k / n,
             "cosine": lambda k, n: 0.5 * (1 + math.cos(math.pi * k / n))}[schedule]
    expected = [1e-3 * shape(k, n) for n in (2, 3, 5) for k in range(n)]  # more_steps raises, keeping the rate
    assert [rate for _, rate in whole.values()] == pytest.approx(expected)
    assert min(rate for _, rate in whole.values()) > 0

    # The same run, stopped by a failure at round 3's third step and resumed from its partial checkpoint.
    optim_step, calls = LocalBackend.optim_step, []

    def failing_optim_step(engine, rate):
        calls.append(rate)
        if len(calls) == 8:
            raise RuntimeError("the machine went away")
        optim_step(engine, rate)

    monkeypatch.setattr(LocalBackend, "optim_step", failing_optim_step)
    config = load_config(write_run_config(**keys, run_name="resumed"))
    with pytest.raises(RuntimeError, match="went away"):
        run(config)
    run(config, resume=tmp_path / "runs" / "resumed")
    resumed = per_step_rates(tmp_path / "runs" / "resumed")
    assert any(e["event"] == "resumed" and e["round"] == 3 for e in read_events(tmp_path / "runs" / "resumed"))
    assert resumed.keys() == whole.keys()
    for step, (round_no, rate) in whole.items():
        assert resumed[step][0] == round_no and resumed[step][1] == pytest.approx(rate, rel=1e-12), step
