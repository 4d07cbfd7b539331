"""The RL round's pieces: advantages, skipped groups, prompt choice and seeds, and the tokens an RL
datum is built from, carried from the sampler through the provider's output untouched."""

from __future__ import annotations

import asyncio

import pytest
from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import TaskState, generate

from inspect_tinker.errors import UsageError
from inspect_tinker.config import Config, build_config
from inspect_tinker.loop.rollout import GroupSampler, choose_prompts, policy_data, reward_groups, step_seed
from inspect_tinker.policies.advantages import group_advantages
from inspect_tinker.policies.alerts import reward_hacking
from inspect_tinker.provider.backend import SampledSequence
from inspect_tinker.provider.model_api import backend_model


def test_advantages_are_relative_to_the_group_and_equal_groups_are_skipped():
    assert group_advantages([1.0, 0.0, 0.0, 1.0]) == [0.5, -0.5, -0.5, 0.5]
    assert group_advantages([1.0, 0.0, 0.0, 0.0]) == [0.75, -0.25, -0.25, -0.25]
    assert group_advantages([1.0, 1.0, 1.0]) is None
    assert group_advantages([0.0, 0.0]) is None


def test_prompts_and_seeds_depend_on_the_seed_round_and_step_alone():
    assert choose_prompts(30, 8, 5) == choose_prompts(30, 8, 5)
    assert choose_prompts(30, 8, 5) != choose_prompts(30, 8, 6)
    assert len(choose_prompts(4, 8, 5)) == 4
    assert not {1, 2} & set(choose_prompts(10, 8, 3, excluded={1, 2}))
    seeds = {step_seed(0, r, s) for r in (1, 2) for s in (1, 2, 3)}
    assert len(seeds) == 6 and step_seed(0, 1, 1) == step_seed(0, 1, 1) != step_seed(1, 1, 1)


def test_reward_hacking_is_said_when_rewards_rise_and_the_evaluation_stalls():
    assert "reward hacking" in reward_hacking([0.2, 0.5, 0.7], 0.40, 0.40, 0.01)
    assert reward_hacking([0.2, 0.5, 0.7], 0.40, 0.60, 0.01) is None  # the evaluation rose too
    assert reward_hacking([0.5, 0.5], 0.40, 0.40, 0.01) is None  # the rewards did not rise
    assert reward_hacking([0.2, 0.7], None, 0.40, 0.01) is None  # nothing to compare with
    # Saturated from the round's start (examples/rl's round 2): the reward held, the evaluation fell.
    assert "fell (0.708 → 0.458)" in reward_hacking([1.0, 1.0, 1.0, 0.97], 0.708, 0.458, 0.01, [0.22, 0.88, 0.84, 0.94])
    assert reward_hacking([1.0, 1.0], 0.708, 0.708, 0.01, [0.5, 0.9]) is None  # the evaluation held
    assert reward_hacking([0.3, 0.3], 0.708, 0.458, 0.01, [0.5, 0.9]) is None  # the reward fell with it
    assert reward_hacking([1.0, 1.0], 0.708, 0.458, 0.01) is None  # no RL round before to compare with


class ScriptedSampler:
    """A Sampler whose completions are token ids chosen so that decoding and re-tokenizing the text
    gives other ids (single characters where the tokenizer has a merged token), with known logprobs."""

    def __init__(self, tokenizer):
        # "Pa" + "ris" as character tokens: "Paris" re-tokenized is not these ids.
        self.tokens = [tokenizer.convert_tokens_to_ids(t) for t in ["P", "a", "r", "i", "s"]]
        self.calls = []

    async def sample_async(self, prompt, num_samples, params):
        self.calls.append((tuple(prompt), num_samples, params.seed))
        return [SampledSequence(tokens=self.tokens[: 2 + i], stop_reason="length",
                                logprobs=[-0.1 * (i + 1)] * (2 + i)) for i in range(num_samples)]

    def max_connections(self):
        return 8


@scorer(metrics=[mean()])
def longer_is_better():
    async def score(state: TaskState, target: Target) -> Score:
        return Score(value=min(len(state.output.completion) / 5, 1.0))

    return score


class _Backend:
    def __init__(self, tokenizer):
        from inspect_tinker.data.renderers import use_renderer
        from inspect_tinker.provider.backend import BackendInfo

        self.tokenizer = tokenizer
        self.renderer = use_renderer(tokenizer, "tokenizer", "tiny")
        self.info = BackendInfo(base_model="tiny", device="cpu", total_parameters=None, trainable_parameters=None, dtype="fp32")


def test_the_datum_carries_the_sampled_tokens_and_logprobs_not_the_text_retokenized(tokenizer, tmp_path):
    sampler = ScriptedSampler(tokenizer)
    model = backend_model(_Backend(tokenizer), GroupSampler(sampler, 4), backend_name="local", model_path=None,
                          config=GenerateConfig())
    task = Task(dataset=[Sample(id="a", input="Capital of France?"), Sample(id="b", input="Capital of Italy?")],
                solver=generate(), scorer=longer_is_better(), epochs=4,
                config=GenerateConfig(temperature=1.0, max_tokens=8, logprobs=True, seed=7))
    [log] = inspect_eval(task, model=model, log_dir=str(tmp_path), display="none")
    assert log.status == "success"
    # One request per group (4 completions at once), seeded per sample, not per epoch.
    assert sorted(n for _, n, _ in sampler.calls) == [4, 4] and len({s for *_, s in sampler.calls}) == 2
    groups = reward_groups([log])
    assert [len(g) for g in groups] == [4, 4]
    for group in groups:
        assert [c.tokens for c in group] == [sampler.tokens[: 2 + i] for i in range(4)]
        assert [c.logprobs for c in group] == [pytest.approx([-0.1 * (i + 1)] * (2 + i)) for i in range(4)]
        text = tokenizer.decode(group[-1].tokens)
        assert tokenizer(text, add_special_tokens=False)["input_ids"] != group[-1].tokens  # the trap avoided
    data, skipped = policy_data(groups)
    assert skipped == 0 and len(data) == 8
    assert data[0].completion_tokens == sampler.tokens[:2] and data[0].prompt_tokens == groups[0][0].prompt_tokens
    assert sum(d.advantage for d in data) == pytest.approx(0.0)


def test_policy_data_skips_groups_whose_rewards_are_all_equal():
    from inspect_tinker.loop.rollout import Completion

    same = [Completion(1.0, [1], [2], [-0.5]) for _ in range(4)]
    mixed = [Completion(r, [1], [2], [-0.5]) for r in (1.0, 0.0, 0.0, 0.0)]
    data, skipped = policy_data([same, mixed])
    assert skipped == 1 and [d.advantage for d in data] == [0.75, -0.25, -0.25, -0.25]


@pytest.mark.parametrize("keys, message", [
    ({"method": "rl"}, "method rl needs rl.tasks"),
    ({"method": "sft_then_rl", "train_file": "t.jsonl", "rl": {"tasks": []}}, "method sft_then_rl needs rl.tasks"),
    ({"train_file": "t.jsonl", "rl": {"tasks": ["r.py@x"]}}, "rl: only read by method: rl or sft_then_rl"),
    ({"method": "rl", "rl": {"tasks": ["r.py@x"], "group_size": 1}}, "rl.group_size: Input should be greater than or equal to 2"),
    ({"method": "rl", "rl": {"tasks": ["r.py@x"], "loss": "grpo"}}, "rl.loss: Input should be 'importance_sampling' or 'ppo'"),
    ({"method": "rl", "rl": {"tasks": ["r.py@x"], "groups": 4}}, "unknown key 'rl.groups'"),
    ({"method": "sft"}, "missing required key 'train_file'"),
    ({"method": "rl", "rl": {"tasks": ["r.py@x"]}, "candidate_file": "c.jsonl"},
     "candidate_file: failure-driven selection adds training records, which method rl's RL rounds never train on"),
    ({"method": "sft_then_rl", "train_file": "t.jsonl", "rl": {"tasks": ["r.py@x"]}, "candidate_file": "c.jsonl"},
     "candidate_file: failure-driven selection adds training records, which method sft_then_rl's RL rounds never"),
])
def test_rl_configuration_mistakes_are_one_line_each(keys, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_config({"eval_tasks": ["e.jsonl"], **keys})


@pytest.mark.parametrize("score, alerted", [(0.25, True), (0.75, False)])
def test_an_rl_round_whose_rewards_rose_while_the_gate_stayed_raises_the_reward_hacking_alert(tmp_path, score, alerted):
    # The history examples/rl/terse.py guards against: the form-only reward rose over the round
    # (the model learned to answer "Great question!"), the gate (terse AND right) stayed at 0.25.
    from inspect_tinker.loop.rounds import _warn_reward_hacking
    from inspect_tinker.tracking import EventLog, RoundRecord, RunFolder, RunState

    folder = RunFolder.create(tmp_path, "run")
    events = EventLog(folder)
    for step, reward in enumerate([0.2, 0.6, 0.9], start=1):
        events.emit("rl_step", round=1, step=step, step_in_round=step, mean_reward=reward)
    baseline = RoundRecord(round=0, learning_rate=None, final_loss=None, score=0.25, adapter=None)
    config = Config.model_validate({"eval_tasks": ["e.jsonl"], "method": "rl", "rl": {"tasks": ["r.py@x"]}})
    _warn_reward_hacking(1, score, RunState(history=[baseline]), config, folder, events)
    raised = [e for e in folder.read_events() if e["event"] == "alert"]
    if alerted:
        [alert] = raised
        assert (alert["alert"], alert["round"]) == ("reward_hacking", 1)
        assert "0.200 → 0.900" in alert["message"] and "0.250 → 0.250" in alert["message"]
    else:  # the gate rose with the rewards: an honest rise
        assert raised == []


def test_a_round_whose_reward_stayed_saturated_while_the_gate_fell_raises_the_reward_hacking_alert(tmp_path):
    # examples/rl's bf16 run, round 2: rewards at 1 from the start (nothing to rise), the gate 0.708 -> 0.458.
    from inspect_tinker.loop.rounds import _warn_reward_hacking
    from inspect_tinker.tracking import EventLog, RoundRecord, RunFolder, RunState

    folder = RunFolder.create(tmp_path, "run")
    events = EventLog(folder)
    for round_no, rewards in ((1, [0.22, 0.88, 0.84, 0.94]), (2, [1.0, 1.0, 1.0, 0.97])):
        for step, reward in enumerate(rewards, start=1):
            events.emit("rl_step", round=round_no, step=step, step_in_round=step, mean_reward=reward)
    history = [RoundRecord(round=r, learning_rate=None, final_loss=None, score=s, adapter=None) for r, s in ((0, 0.375), (1, 0.708))]
    config = Config.model_validate({"eval_tasks": ["e.jsonl"], "method": "rl", "rl": {"tasks": ["r.py@x"]}})
    _warn_reward_hacking(2, 0.458, RunState(history=history), config, folder, events)
    [alert] = [e for e in folder.read_events() if e["event"] == "alert"]
    assert alert["alert"] == "reward_hacking" and "0.708 → 0.458" in alert["message"]
