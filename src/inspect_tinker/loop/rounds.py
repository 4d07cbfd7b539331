"""The loop: a baseline, then rounds of train -> evaluate -> decide, until the bar is met or rounds run out.

`rounds` reads as design.md lists the data flow. It is a generator of stages: each `yield from`
hands Inspect one stage (a round's training task, or the round's evaluation tasks) and gets that
stage's logs back; the task source (stages.py) runs it from Inspect's callbacks, so the code
between two stages runs in `task_complete`. Every step it calls lives in a module named for that
step. The run's position is `state`, written to the run folder at every durable point, so a
resumed run enters the loop where the killed one left it.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Generator
from dataclasses import asdict, replace
from pathlib import Path

from inspect_ai import Task
from inspect_ai.log import EvalLog

from inspect_tinker.config import Config
from inspect_tinker.data.decontamination import ContaminationIndex, evaluation_inputs, overlapping_inputs
from inspect_tinker.data.prepare import CheckedRecords, check_training_records, prepare_training_data
from inspect_tinker.evals.result import EvalResult
from inspect_tinker.errors import UsageError
from inspect_tinker.evals.runner import EvalTask
from inspect_tinker.loop.eval_tasks import build_reward_tasks
from inspect_tinker.loop.evaluation import Evaluator, recorded_evaluations
from inspect_tinker.loop.graceful_stop import GracefulStop
from inspect_tinker.loop.pruning import prune_at_run_end
from inspect_tinker.loop.rollout import RLRound, round_method, round_rewards
from inspect_tinker.loop.settings import backend_settings, policy_rules, selection_settings, training_settings
from inspect_tinker.loop.summary import summarize
from inspect_tinker.loop.training import Trainer, training_stage
from inspect_tinker.policies import (
    Hyperparameters, PolicyRules, account_for_new_records, account_for_unlearned, best_round, check_gate, decide,
)
from inspect_tinker.policies.alerts import reward_hacking
from inspect_tinker.policies.learning_rate import resolve_learning_rate
from inspect_tinker.policies.focus import FocusCandidate, FocusRecord, extra_steps, unlearned, weigh
from inspect_tinker.policies.selection import DataAddition
from inspect_tinker.policies.selector import DataSelector, addition_examples, rendered_records
from inspect_tinker.provider import Backend, create_backend
from inspect_tinker.tracking import EventLog, RoundUsage, RunFolder, RunState, checkpoint_address, next_state
from inspect_tinker.tracking.resume import restore_point
from inspect_tinker.tracking.run_folder import write_json_atomic


def rounds(
    config: Config, tasks: list[EvalTask], folder: RunFolder, events: EventLog, state: RunState, stop: GracefulStop
) -> Generator[list[Task], list[EvalLog], dict]:
    """The loop of one run; yields its stages, receives their logs, returns the summary dict."""
    clock = _Clock(folder, state.elapsed_seconds)
    # Data: the training file and the candidate pool checked, deduplicated and decontaminated
    # against every evaluation's inputs, before the model loads.
    records, selector = _check_inputs(config, tasks, events)
    excluded = _check_reward_tasks(config, tasks, events)
    # The backend: the base model loaded (local), or a LoRA training run created (tinker).
    backend = _start_backend(config, events)
    # The examples: rendered and loss-masked with the backend's tokenizer.
    file_examples = _prepare_examples(records, backend, config, folder, events) if records is not None else []
    # Resume: from the run's last durable point, past a damaged checkpoint.
    _restore(backend, config, folder, state, events)
    trainer = Trainer(backend, training_settings(config), folder, events, stop, save=clock.save)
    rl = RLRound(trainer, config, lambda: build_reward_tasks(config), excluded)
    evaluator = Evaluator(backend, config, folder, events, recorded_evaluations(folder))
    rules = policy_rules(config)

    if config.baseline_eval and not state.baseline_done:
        # Round 0: the user's tasks against the base model, decided like every round.
        result, usage = yield from evaluator.stage(0, None, None, tokens_trained=0, cost_before=_cost(state))
        state = _decide(0, result, usage, state, rules, config, selector=None, folder=folder, events=events,
                        backend=backend)
        clock.save(state)

    while state.phase != "finished":
        round_no = state.round
        method = round_method(config, round_no)
        if state.phase == "training":
            # Round n: the train task runs the round's optimizer steps, then its checkpoint is sealed.
            _grow_adapter(backend, config, state, events)
            if method == "rl":  # each step: a rollout stage of the reward tasks, then a policy step
                yield from rl.stage(state)
            else:
                # The file's records, those selection added, and the extra copies of the records still unlearned.
                examples = file_examples + _added_examples(state, backend, config)
                yield from training_stage(trainer, state, examples)
        # The round's evaluation tasks, at its checkpoint.
        result, usage = yield from evaluator.stage(round_no, state.learning_rate,
                                                   checkpoint_address(folder.round_dir(round_no)),
                                                   tokens_trained=state.round_tokens_trained, cost_before=_cost(state))
        if method == "rl":
            _warn_reward_hacking(round_no, result.score, state, config, folder, events)
        # Decide: the gate, the policy's next hyperparameters (or the end: max_cost spent), data chosen from the failures.
        state = _decide(round_no, result, usage, state, rules, config, selector=selector, folder=folder, events=events,
                        backend=backend)
        clock.save(state)
        if stop.requested and state.phase != "finished":
            raise stop.interrupted(f"stopped after round {round_no}")

    # Finish: the summary, with the best round and the exit code.
    summary = summarize(state.history, config, folder, bar_met=state.history[-1].bar_met,
                        wall_seconds=state.elapsed_seconds, peak_memory_mb=_peak_memory_mb(),
                        evaluations=evaluator.earlier)
    folder.write_summary(summary)
    events.emit("run_finished", **summary)
    if config.prune_checkpoints:  # the service bills every stored checkpoint
        prune_at_run_end(folder, events, base_url=config.tinker_base_url,
                         unreachable_timeout=config.tinker_unreachable_timeout)
    return summary


class _Clock:
    """Saves the run's state with its wall time so far, across resumes."""

    def __init__(self, folder: RunFolder, elapsed_before: float):
        self.folder, self.elapsed_before, self.started = folder, elapsed_before, time.time()

    def save(self, state: RunState) -> None:
        state.elapsed_seconds = self.elapsed_before + time.time() - self.started
        self.folder.write_state(state)


def _check_inputs(config: Config, tasks: list[EvalTask], events: EventLog) -> tuple[CheckedRecords | None, DataSelector | None]:
    """The checked training records (None: `method: rl` reads no file) and the data selector (its
    candidate pool checked); UsageError on bad input."""
    if config.train_file is None:
        return None, None
    eval_inputs = evaluation_inputs([t.task for t in tasks])
    progress = lambda **fields: events.emit("data_progress", **fields)  # noqa: E731
    records = check_training_records(config.train_file, config.data, eval_inputs, config.strict, progress=progress)
    selector = DataSelector.from_settings(selection_settings(config), records, tasks, eval_inputs)
    if selector and selector.pool_report:
        events.emit("candidates_checked", **selector.pool_report)
    return records, selector


def _check_reward_tasks(config: Config, tasks: list[EvalTask], events: EventLog) -> dict[str, set[int]]:
    """Decontaminate the reward tasks' prompts against every evaluation's inputs, by the check
    training records get (`data.decontamination`): rewarding the gate's prompts is fitting the
    gate. `drop` leaves the overlapping prompts out of the rollouts (returned: per reward task, the
    indices never sampled), `warn` only says so; UsageError when a reward task has none left."""
    if config.method == "sft" or config.data.decontamination == "off":
        return {}
    index = ContaminationIndex(evaluation_inputs([t.task for t in tasks]), config.data.contamination_ngram_words)
    excluded = {}
    for reward in build_reward_tasks(config):
        inputs = evaluation_inputs([reward.task])
        overlaps = overlapping_inputs(inputs, index)
        for item, hits in overlaps.items():
            events.emit("reward_prompt_contaminated", task=reward.name, sample_id=item.sample_id,
                        dropped=config.data.decontamination == "drop",
                        hits=[f"{h.task}/{h.sample_id}" for h in hits], matched=hits[0].matched)
        if overlaps and config.data.decontamination == "drop":
            excluded[reward.name] = {i for i, item in enumerate(inputs) if item in overlaps}
            if len(excluded[reward.name]) == len(inputs):
                raise UsageError(f"rl.tasks: every prompt of reward task {reward.name} overlaps an evaluation "
                                 "task's inputs; reward other prompts than those the bar is measured on")
    return excluded


def _warn_reward_hacking(round_no: int, score: float, state: RunState, config: Config, folder: RunFolder,
                         events: EventLog) -> None:
    """Say so when the RL round's rewards rose but its evaluation did not, or held while it fell (policies/alerts.py's rule)."""
    history = folder.read_events()
    rewards, rewards_before = round_rewards(history, round_no), round_rewards(history, round_no - 1)
    before = state.history[-1].score if state.history else None
    message = reward_hacking(rewards, before, score, config.min_delta, rewards_before)
    if message:
        events.emit("alert", alert="reward_hacking", round=round_no, message=message)


def _start_backend(config: Config, events: EventLog) -> Backend:
    t0 = time.time()
    backend = create_backend(backend_settings(config))
    events.emit("backend_ready", info=asdict(backend.info), seconds=time.time() - t0)
    return backend


def _prepare_examples(records: CheckedRecords, backend: Backend, config: Config, folder: RunFolder, events: EventLog):
    """The training file's examples, rendered with the backend's tokenizer; the data report written beside them."""
    progress = lambda **fields: events.emit("data_progress", **fields)  # noqa: E731
    examples, report = prepare_training_data(records, backend.tokenizer, config.max_seq_length, config.data,
                                             progress=progress)
    write_json_atomic(folder.data_report_path, report.to_dict())
    events.emit("data_prepared", report=str(folder.data_report_path), **report.summary())
    return examples


def _restore(backend: Backend, config: Config, folder: RunFolder, state: RunState, events: EventLog) -> None:
    """A fresh run's `learning_rate: auto` made a number for the model just loaded; a resumed run's checkpoint loaded."""
    if state.learning_rate == "auto":
        state.learning_rate = resolve_learning_rate("auto", backend.info)
        events.emit("learning_rate_chosen", learning_rate=state.learning_rate,
                    model_type=backend.info.model_type, hidden_size=backend.info.hidden_size)
    if state.checkpoint is not None:
        restore_point(folder, state, events)  # falls back past a torn checkpoint
        if state.checkpoint is not None:
            backend.load_checkpoint(Path(state.checkpoint))
        events.emit("resumed", round=state.round, phase=state.phase, global_step=state.global_step,
                    checkpoint=state.checkpoint)


def _grow_adapter(backend: Backend, config: Config, state: RunState, events: EventLog) -> None:
    """Policy `grow_rank` decided a wider adapter after the last round: widen it before training."""
    if config.policy == "grow_rank" and state.lora_rank > backend.lora_rank:
        backend.grow_lora_rank(state.lora_rank)
        events.emit("adapter_grown", round=state.round, lora_rank=state.lora_rank,
                    trainable_parameters=backend.info.trainable_parameters)


def _added_examples(state: RunState, backend: Backend, config: Config) -> list:
    """The records data selection added so far, and the extra copies of the round's unlearned
    focus records, as training examples."""
    additions = [DataAddition.from_dict(a) for a in state.data_additions]
    focus = [FocusRecord.from_dict(r) for r in state.focus]
    return addition_examples([*additions, *focus], backend.tokenizer, config.data, config.max_seq_length)


def _weigh_focus(candidates: list[FocusCandidate], backend: Backend, config: Config, events: EventLog,
                 round_no: int) -> list[FocusRecord]:
    """Each focus candidate's own loss on the current weights, and the extra copies it gets
    (policies/focus.py); the `focus_weighed` event lists them."""
    rendered = rendered_records([c.conversation for c in candidates], backend.tokenizer, config.data,
                                config.max_seq_length)
    kept = [(c, e) for c, e in zip(candidates, rendered) if e is not None]
    losses = backend.example_losses([e for _, e in kept]) if kept else []
    focus = weigh([c for c, _ in kept], losses, weight=config.focus_weight, loss_bound=config.focus_loss_bound)
    events.emit("focus_weighed", round=round_no, weight=config.focus_weight, loss_bound=config.focus_loss_bound,
                unlearned=len(unlearned(focus)),
                records=[{"where": r.where, "why": r.why, "loss": r.loss, "copies": r.copies} for r in focus])
    return focus


def _cost(state: RunState) -> float | None:
    """What the run has cost so far (None: not priced)."""
    return state.history[-1].total_cost if state.history else None


def _decide(round_no: int, result: EvalResult, usage: RoundUsage, state: RunState, rules: PolicyRules, config: Config,
            *, selector: DataSelector | None, folder: RunFolder, events: EventLog, backend: Backend) -> RunState:
    """The run's state after the evaluation of round `round_no` (0: the baseline) scored `result`
    and the round used `usage`: the gate's verdict, the decision (the run stops once `max_cost`
    is spent), the data selection aimed at the failures, all recorded; a rollback loaded, and
    optimizer states no resume can need pruned."""
    verdict = check_gate(result, threshold=config.eval_threshold, gate_on=config.gate_on)
    # The policy adjusts its own steps, not those the last round's focus added.
    current = Hyperparameters(state.learning_rate, state.steps_per_round - state.focus_steps, state.lora_rank)
    decision = decide(verdict, round_no, current, state.history, rules=rules)
    if not decision.stop and config.max_cost is not None and usage.total_cost >= config.max_cost:
        decision = replace(decision, stop=True, rule="max_cost", rollback_to=None,
                           reason=f"{verdict.reason}; the run has cost {usage.total_cost:.4g} of max_cost {config.max_cost:g}")
    additions, focus = [], []
    if selector and round_no > 0 and not decision.stop:  # before the decision is recorded: what it adds changes it
        earlier = [DataAddition.from_dict(a) for a in state.data_additions]
        chosen = selector.choose(result, round_no, earlier)
        if selector.selects:
            _record_selection(chosen, round_no, events)
        additions = [a.to_dict() for a in chosen.additions]
        decision = account_for_new_records(decision, current, chosen.new_records)
        if config.focus_weight > 1 and round_method(config, round_no + 1) == "sft":
            # The added records and those of the questions still failing, weighed by their own
            # loss on the weights the next round starts from (a rollback's are close enough).
            focus = _weigh_focus(selector.focus_candidates(chosen, [*earlier, *chosen.additions]), backend, config,
                                 events, round_no)
            decision = account_for_unlearned(decision, len(unlearned(focus)), extra_steps(focus, config.batch_size),
                                             config.max_steps_per_round)
    adapter = checkpoint_address(folder.round_dir(round_no)) if round_no > 0 else None  # a path, or tinker://...
    after = next_state(state, verdict, decision, adapter=adapter, data_additions=additions,
                       focus=[r.to_dict() for r in focus], usage=usage)
    events.emit("decision", round=round_no, score=result.score, threshold=config.eval_threshold, gate=asdict(verdict),
                best_round=best_round(after.history).round, **asdict(decision))
    if round_no > 0:
        if decision.rollback_to is not None:  # the best trained round's checkpoint holds its adapter and optimizer
            backend.load_checkpoint(Path(after.checkpoint))
        best_trained = best_round(after.history, trained_only=True).round
        folder.prune_trainer_states(keep={r.round for r in after.history[-config.keep_last:]} | {best_trained})
    return after


def _record_selection(chosen, round_no: int, events: EventLog) -> None:
    events.emit("data_selected", round=round_no, **chosen.summary())
    for addition in chosen.additions:
        events.emit("data_added", **addition.to_dict())
    for refusal in chosen.refusals:
        events.emit("data_refused", **refusal.to_dict())


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
