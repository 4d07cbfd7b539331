"""Where the run's configuration becomes the typed settings of the steps below the loop.

The layers below the loop (data, provider, evals, policies, tracking, report) never read the
configuration (tests/test_import_graph.py checks it): each step takes settings of its own
type, built here once where a run or an evaluation is set up, and passed down.
"""

from __future__ import annotations

from inspect_tinker.config import Config
from inspect_tinker.loop.training import TrainingSettings
from inspect_tinker.policies import PolicyRules
from inspect_tinker.policies.selector import SelectionSettings
from inspect_tinker.provider.settings import AdamWSettings, BackendSettings, LocalBackendSettings, TinkerBackendSettings
from inspect_tinker.tracking.settings import DeliverySettings


def backend_settings(config: Config) -> BackendSettings:
    """The settings of the backend `config.backend` names: LocalBackendSettings or TinkerBackendSettings."""
    adamw = AdamWSettings(beta1=config.adam_beta1, beta2=config.adam_beta2, eps=config.adam_eps,
                          weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm)
    if config.backend == "tinker":
        return TinkerBackendSettings(
            base_model=config.base_model,
            tinker_base_url=config.tinker_base_url,
            tinker_tokenizer=config.tinker_tokenizer,
            tinker_unreachable_timeout=config.tinker_unreachable_timeout,
            tinker_capacity_timeout=config.tinker_capacity_timeout,
            lora_rank=config.lora_rank,
            seed=config.seed,
            renderer_name=config.renderer_name,
            adamw=adamw,
            learning_rate_auto=config.learning_rate == "auto",
        )
    return LocalBackendSettings(
        base_model=config.base_model,
        device=config.device,
        lora_rank=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        lora_target_modules=config.lora_target_modules,
        max_lora_rank=config.max_lora_rank if config.policy == "grow_rank" else None,
        batch_size=config.batch_size,
        micro_batch_size=config.micro_batch_size,
        max_seq_length=config.max_seq_length,
        packing=config.packing,
        precision=config.precision,
        gradient_checkpointing=config.gradient_checkpointing,
        distributed=config.distributed,
        adamw=adamw,
        seed=config.seed,
        renderer_name=config.renderer_name,
        eval_batch_size=config.eval_batch_size,
        sampling_precision=config.generation.precision,
    )


def selection_settings(config: Config) -> SelectionSettings:
    """What failure-driven data selection is told (policies/selector.py)."""
    return SelectionSettings(
        train_file=config.train_file, candidate_file=config.candidate_file, select_per_round=config.select_per_round,
        upweight_repeats=config.upweight_repeats, retrieval=config.retrieval, focus_weight=config.focus_weight,
        data=config.data,
    )


def delivery_settings(config: Config) -> DeliverySettings:
    """Where the run's events go besides its run folder (tracking/sinks.py)."""
    return DeliverySettings.model_validate(config, from_attributes=True)


def policy_rules(config: Config) -> PolicyRules:
    """How the decision after each round follows from the scores (policies/)."""
    return PolicyRules(
        policy=config.policy, lr_decay=config.lr_decay, min_delta=config.min_delta, steps_growth=config.steps_growth,
        max_steps_per_round=config.max_steps_per_round, rank_growth=config.rank_growth,
        max_lora_rank=config.max_lora_rank, max_rounds=config.max_rounds, on_regression=config.on_regression,
    )


def training_settings(config: Config) -> TrainingSettings:
    """How the rounds train (loop/training.py)."""
    return TrainingSettings(
        batch_size=config.batch_size, seed=config.seed, lr_schedule=config.lr_schedule,
        warmup_steps=config.warmup_steps, save_every_steps=config.save_every_steps, max_rounds=config.max_rounds,
        threshold=config.eval_threshold,
    )
