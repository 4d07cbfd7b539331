"""An RL round: the reward tasks as Inspect evals (the rollouts), their scores as rewards, policy steps.

It reads like tinker-cookbook's recipes/rl_loop.py. For each optimizer step of the round:
1. choose `prompts_per_step` prompts of each reward task, from the step's seed;
2. sample `group_size` completions of each with the current weights: the stage
   `rollout_round_<n>`, an Inspect eval of the reward tasks (epochs = group_size) through the
   `tinker` provider, so the tasks' own solvers and scorers run as in any evaluation;
3. each completion's reward is its sample's score; advantage = reward - the group's mean, and
   groups whose rewards are all equal are skipped (policies/advantages.py);
4. one forward_backward_policy on the sampled tokens and their sampling logprobs, as the
   provider recorded them (never the text re-tokenized), and one optim_step.
Inspect cannot nest evaluations, so the steps run between the rollout stages, where the loop's
code runs (in task_complete); then the round's `train_round_<n>` task records them (rewards,
groups skipped, clip fraction and KL per step) and the round's checkpoint is sealed as after SFT.

A step's sampling seed comes from the run's seed, the round and the step alone, and so does its
choice of prompts: a run resumed from a checkpoint samples the same completions again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, replace

from inspect_ai import Task, task_with
from inspect_ai.log import EvalLog
from inspect_ai.log._samples import sample_active  # the sample and epoch a generate call answers
from inspect_ai.model import GenerateConfig

from inspect_tinker.config import Config, RLConfig
from inspect_tinker.evals.runner import EvalTask, sample_result
from inspect_tinker.loop.stages import drop_stage_logs
from inspect_tinker.loop.training import TrainedRound, Trainer, training_task
from inspect_tinker.policies.advantages import group_advantages
from inspect_tinker.provider.backend import PolicyDatum, PolicyLoss, SampledSequence, Sampler, SamplingParams
from inspect_tinker.provider.model_api import SAMPLED_TOKENS, backend_model
from inspect_tinker.tracking import RunState
from inspect_tinker.tracking.task_metadata import stage_labels


def round_method(config: Config, round_no: int) -> str:
    """How round `round_no` trains: "sft" or "rl" (`sft_then_rl`: round 1 SFT, the later rounds RL)."""
    if config.method == "sft_then_rl":
        return "sft" if round_no == 1 else "rl"
    return config.method


def step_seed(seed: int, round_no: int, step: int) -> int:
    """The sampling seed of step `step` of round `round_no` in a run seeded `seed` (the same in every process:
    random.Random hashes a string seed with SHA-512, not Python's per-process hash)."""
    return random.Random(f"rl/{seed}/{round_no}/{step}").getrandbits(31)


def choose_prompts(n_samples: int, k: int, seed: int, excluded: set[int] = frozenset()) -> list[int]:
    """The indices of `k` samples (all, if fewer) of a dataset of `n_samples`, chosen by `seed`, none `excluded`."""
    pool = [i for i in range(n_samples) if i not in excluded]
    return sorted(random.Random(seed).sample(pool, min(k, len(pool))))


class GroupSampler:
    """A Sampler for a rollout stage: the epochs of one sample are one group, sampled in one request.

    Inspect runs each epoch of a sample as its own generate call. The first call of a sample asks
    the backend for all `group_size` completions at once, seeded by the stage's seed and the
    sample's id; epoch e takes completion e. So the group shares one prefill and one batch, and
    which completions a sample gets does not depend on the order Inspect runs them in.
    """

    def __init__(self, sampler: Sampler, group_size: int):
        self.sampler, self.group_size = sampler, group_size
        self._groups: dict[tuple, asyncio.Future] = {}

    async def sample_async(self, prompt: list[int], num_samples: int, params: SamplingParams) -> list[SampledSequence]:
        active = sample_active()
        if active is None or num_samples != 1:  # not a rollout's generate call: sampled as asked
            return await self.sampler.sample_async(prompt, num_samples, params)
        key = (str(active.sample.id), tuple(prompt))
        if key not in self._groups:
            seed = random.Random(f"{params.seed}/{active.sample.id}").getrandbits(31)
            self._groups[key] = asyncio.ensure_future(
                self.sampler.sample_async(prompt, self.group_size, replace(params, seed=seed)))
        group = await self._groups[key]
        return [group[(active.epoch - 1) % self.group_size]]

    def max_connections(self) -> int:
        return self.sampler.max_connections()


@dataclass(frozen=True)
class Completion:
    """One sampled completion of a rollout: its reward and the tokens it was sampled as."""

    reward: float
    prompt_tokens: list[int]
    tokens: list[int]
    logprobs: list[float]


def reward_groups(logs: list[EvalLog]) -> list[list[Completion]]:
    """The completions of a rollout stage's logs, grouped by task and sample (one group per prompt),
    each with its reward (the sample's first score, in 0..1) and the tokens the provider recorded."""
    groups: dict[tuple[str, str], list[Completion]] = {}
    for log in logs:
        if log.status != "success":
            raise RuntimeError(f"rollout {log.eval.task} failed: {log.error.message if log.error else log.status}")
        for s in sorted(log.samples or [], key=lambda s: (str(s.id), s.epoch)):
            sampled = (s.output.metadata or {}).get(SAMPLED_TOKENS)
            if sampled is None:
                raise RuntimeError(f"rollout {log.eval.task}, sample {s.id}: the output carries no sampled tokens "
                                   "(was it answered by the tinker provider with logprobs on?)")
            choice = sampled["choices"][0]
            reward = sample_result(log.eval.task, s).value
            groups.setdefault((log.eval.task, str(s.id)), []).append(
                Completion(reward, sampled["prompt_tokens"], choice["tokens"], choice["logprobs"]))
    return list(groups.values())


def policy_data(groups: list[list[Completion]]) -> tuple[list[PolicyDatum], int]:
    """The datums of a step (each completion with its group-relative advantage) and how many
    groups were skipped because every reward in them was equal."""
    data, skipped = [], 0
    for group in groups:
        advantages = group_advantages([c.reward for c in group])
        if advantages is None:
            skipped += 1
            continue
        data += [PolicyDatum(c.prompt_tokens, c.tokens, c.logprobs, a) for c, a in zip(group, advantages) if c.tokens]
    return data, skipped


def rollout_tasks(reward_tasks: list[EvalTask], rl: RLConfig, sampler: Sampler, model_factory: Callable,
                  seed: int, excluded: dict[str, set[int]], labels: tuple[dict, list[str]], round_no: int
                  ) -> list[Task]:
    """Fresh copies of the reward tasks for one step's rollout: the step's prompts, `group_size`
    epochs, sampling at `rl.temperature` with logprobs (the provider then records the tokens)."""
    metadata, tags = labels
    model = model_factory(GroupSampler(sampler, rl.group_size))
    staged = []
    for t in reward_tasks:
        chosen = choose_prompts(len(t.task.dataset), rl.prompts_per_step, seed, excluded.get(t.name, set()))
        name = f"rollout_round_{round_no}" if len(reward_tasks) == 1 else f"rollout_round_{round_no}_{t.name}"
        sampling = GenerateConfig(temperature=rl.temperature, max_tokens=rl.max_tokens or t.generation["max_tokens"],
                                  logprobs=True, seed=seed)
        staged.append(task_with(
            t.task, name=name, dataset=[t.task.dataset[i] for i in chosen], epochs=rl.group_size, model=model,
            config=t.task.config.merge(sampling), metadata={**(t.task.metadata or {}), **metadata,
                                                            "reward_task": t.name},
            tags=[*(t.task.tags or []), *tags],
        ))
    return staged


@dataclass
class RLRound:
    """Runs the RL rounds of a run with `trainer`'s backend, folder, events and checkpoints."""

    trainer: Trainer
    config: Config
    build_reward_tasks: Callable[[], list[EvalTask]]
    excluded: dict[str, set[int]]  # per reward task, the samples never used (decontamination)

    def stage(self, state: RunState) -> Generator[list[Task], list[EvalLog], str]:
        """The RL training of the round in progress: a rollout stage and a policy step per step,
        then `train_round_<n>` recording them; returns the sealed checkpoint's address."""
        trainer, rl, config = self.trainer, self.config.rl, self.config
        folder, events, backend = trainer.folder, trainer.events, trainer.backend
        drop_stage_logs(folder, state.round, "rollout", from_step=state.step_in_round + 1)
        drop_stage_logs(folder, state.round, "train")
        loss = PolicyLoss(rl.loss, rl.clip_low, rl.clip_high)
        events.emit("round_started", round=state.round, max_rounds=trainer.settings.max_rounds, method="rl",
                    learning_rate=state.learning_rate, steps=state.steps_per_round, lora_rank=state.lora_rank,
                    group_size=rl.group_size, prompts_per_step=rl.prompts_per_step, resumed_at_step=state.step_in_round)
        start, steps, losses, rates, t_round = state.global_step, [], [], [], time.time()
        while state.step_in_round < state.steps_per_round:
            step = state.step_in_round + 1
            seed = step_seed(config.seed, state.round, step)
            labels = stage_labels(run=folder.name, run_dir=str(folder.root), round_no=state.round, stage="rollout",
                                  learning_rate=state.learning_rate, checkpoint=None, threshold=config.eval_threshold,
                                  step=step)
            factory = lambda sampler: backend_model(backend, sampler, backend_name=config.backend,  # noqa: E731
                                                    model_path=None, config=GenerateConfig())
            t0 = time.time()
            try:
                logs = yield rollout_tasks(self.build_reward_tasks(), rl, backend.sampler(rollout=True), factory, seed,
                                           self.excluded, labels, state.round)
            finally:
                backend.end_sampling()
            sampling_seconds, t1 = time.time() - t0, time.time()
            groups = reward_groups(logs)
            data, skipped = policy_data(groups)
            rate = trainer.step_learning_rate(state)
            metrics = None
            if data:  # every group skipped: nothing to learn from, and no optimizer step (the cookbook's too)
                metrics = backend.forward_backward_policy(data, loss)
                backend.optim_step(rate)
            rewards = [c.reward for g in groups for c in g]
            record = {
                "round": state.round, "step": state.global_step + 1, "step_in_round": step, "seed": seed,
                "mean_reward": sum(rewards) / max(len(rewards), 1), "groups": len(groups),
                "groups_skipped": skipped / max(len(groups), 1), "loss": metrics.loss if metrics else None,
                "clip_fraction": metrics.clip_fraction if metrics else None,
                "kl_sample_train": metrics.kl_sample_train if metrics else None, "learning_rate": rate,
                "sampling_seconds": sampling_seconds, "training_seconds": time.time() - t1,
            }
            state.global_step += 1
            state.last_loss = record["loss"] if metrics else state.last_loss
            state.round_tokens_trained += sum(len(d.prompt_tokens) + len(d.completion_tokens) for d in data)
            steps.append(record)
            losses.append(record["loss"] if metrics else float("nan"))
            rates.append(rate)
            events.emit("rl_step", **record)
            trainer.after_step(state)
        seconds = time.time() - t_round
        events.emit("round_trained", round=state.round, seconds=seconds, tokens_trained=state.round_tokens_trained)
        trained = TrainedRound(losses=losses, learning_rates=rates, final_loss=state.last_loss, global_step_start=start,
                               lora_rank=state.lora_rank, examples=rl.prompts_per_step * rl.group_size,
                               tokens_per_second=state.round_tokens_trained / max(seconds, 1e-9), rl_steps=steps)
        metadata, tags = stage_labels(run=folder.name, run_dir=str(folder.root), round_no=state.round, stage="train",
                                      learning_rate=state.learning_rate, checkpoint=None,
                                      threshold=config.eval_threshold)
        what = (f"Round {state.round}: {state.steps_per_round} RL steps ({rl.loss}) of {rl.prompts_per_step} prompts x "
                f"{rl.group_size} completions at learning rate {state.learning_rate:g}, LoRA rank {state.lora_rank}; "
                f"mean reward per step: {', '.join(f'{r:.3f}' for r in (s['mean_reward'] for s in steps))}")
        task, outcome = training_task(state.round, lambda: trained, learning_rate=state.learning_rate,
                                      steps=state.steps_per_round, batch_size=rl.prompts_per_step * rl.group_size,
                                      lora_rank=state.lora_rank, examples=trained.examples, metadata=metadata,
                                      tags=tags, what=what)
        [log] = yield [task]
        if log.status != "success" or outcome.trained is None:
            raise RuntimeError(f"training round {state.round} failed: {log.error.message if log.error else log.status}")
        return trainer.seal_round(state)


def round_rewards(events: list[dict], round_no: int) -> list[float]:
    """The mean reward of each RL step of round `round_no`, from the run's events (the last record of a step wins)."""
    by_step = {e["step_in_round"]: e["mean_reward"] for e in events if e["event"] == "rl_step" and e["round"] == round_no}
    return [by_step[k] for k in sorted(by_step)]
