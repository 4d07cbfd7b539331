"""An RL round through the loop with `backend: tinker`, against the local Tinker-compatible server (tiny model).

One real run (`method: rl`, `importance_sampling`), rewarded by tests/length_reward.py: the
tiny random model's text means nothing, but its lengths differ, so its groups train. What the
server received is read from its own database: every policy step's request names the loss
function and carries, datum by datum, exactly what the rollout's Inspect log recorded as
sampled (the target tokens and the sampling logprobs, never the text tokenized again) and the
advantage computed from that log's scores. The mean reward recorded per step (the rl_step
events and the train_round log) is the mean of those scores.
"""

from __future__ import annotations

import json

import length_reward
import pytest
from inspect_ai.log import read_eval_log

from inspect_tinker.cli import main
from inspect_tinker.provider.model_api import SAMPLED_TOKENS
from inspect_tinker.provider.tinker_checkpoints import training_run_of
from inspect_tinker.tracking import RunFolder
from inspect_tinker.tracking.task_metadata import loop_metadata

from .test_policy_on_server import received

pytestmark = pytest.mark.tinker_server

STEPS, GROUP_SIZE, PROMPTS = 2, 4, 2


def rollouts(run_dir) -> dict[int, list[list]]:
    """Per step, the groups of its rollout log: (tokens the prompt was, tokens sampled, their logprobs, reward)."""
    logs = {}
    for path in (run_dir / "logs").glob("*.eval"):
        log = read_eval_log(str(path))
        entry = loop_metadata(log.eval.metadata)
        if entry["stage"] == "rollout":
            groups = {}
            for s in sorted(log.samples, key=lambda s: (str(s.id), s.epoch)):
                sampled = s.output.metadata[SAMPLED_TOKENS]
                choice = sampled["choices"][0]
                groups.setdefault(s.id, []).append((sampled["prompt_tokens"], choice["tokens"], choice["logprobs"],
                                                    s.scores["length"].value))
            logs[entry["step"]] = list(groups.values())
    return logs


def test_an_rl_round_on_the_server_sends_the_sampled_tokens_logprobs_and_advantages_and_records_the_reward(
    tiny_tinker_server, tmp_path, run_config_writer
):
    config = run_config_writer(
        tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=tiny_tinker_server.base_url,
        method="rl", train_file=None, rl={"tasks": [f"{length_reward.__file__}@lengthy"], "group_size": GROUP_SIZE,
                                          "prompts_per_step": PROMPTS, "max_tokens": 8, "loss": "importance_sampling"},
        eval_tasks=[{"task": f"{length_reward.__file__}@lengthy", "task_args": {"held_out": True}}],
        baseline_eval=False, max_rounds=1, steps_per_round=STEPS, eval_threshold=1.0, lora_rank=4,
        learning_rate=1e-2, generation={"max_tokens": 8}, data={"decontamination": "drop"},
    )
    assert main(["run", "--config", str(config)]) == 1  # random text never reaches the bar
    run_dir = tmp_path / "runs" / "test"
    state = RunFolder.open(run_dir).read_state()
    model_id = training_run_of(state.history[-1].adapter)

    groups = rollouts(run_dir)
    assert sorted(groups) == list(range(1, STEPS + 1))
    requests = [request for request, _ in received(tiny_tinker_server, model_id, "FORWARD_BACKWARD")]
    assert len(requests) == STEPS  # one policy step per RL step: no group was all one reward
    for step, request in zip(sorted(groups), requests):
        assert request["loss_fn"] == "importance_sampling"
        completions = [c for group in groups[step] for c in group]
        assert len(groups[step]) == PROMPTS and len(completions) == PROMPTS * GROUP_SIZE
        assert len(request["data"]) == len(completions)
        sent = iter(request["data"])
        for group in groups[step]:
            mean = sum(reward for *_, reward in group) / len(group)
            for prompt, tokens, logprobs, reward in group:
                inputs, before = next(sent)["loss_fn_inputs"], len(prompt) - 1
                # Shifted by one against the model input: the prompt's own tokens, then what was sampled.
                assert inputs["target_tokens"]["data"] == (prompt + tokens)[1:]
                assert inputs["logprobs"]["data"] == pytest.approx([0.0] * before + logprobs, rel=1e-6)
                assert inputs["advantages"]["data"] == pytest.approx([0.0] * before + [reward - mean] * len(tokens))

    # The mean reward of each step: in its rl_step event and in the round's train_round log.
    mean_rewards = [sum(r for g in groups[step] for *_, r in g) / (PROMPTS * GROUP_SIZE) for step in sorted(groups)]
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    recorded = [e for e in events if e["event"] == "rl_step"]
    assert [e["mean_reward"] for e in recorded] == pytest.approx(mean_rewards)
    assert all(e["groups_skipped"] == 0 and e["loss"] is not None for e in recorded)
    [train_log] = [read_eval_log(str(p)) for p in (run_dir / "logs").glob("*train-round-1*.eval")]
    rl_steps = train_log.samples[0].metadata["rl_steps"]
    assert [s["mean_reward"] for s in rl_steps] == pytest.approx(mean_rewards)
