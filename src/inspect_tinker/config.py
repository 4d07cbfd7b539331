"""The one configuration model of a run: every key, its default and its meaning.

A run is described by a file (JSON, YAML or TOML) plus command-line overrides, validated
once by `load_config`. Relative paths in a file are resolved against the file's folder.
The keys of the original tinker-eval-loop demo config are accepted unchanged.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from inspect_tinker.data.renderers import RENDERERS
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.data.text_encoding import decode_utf8
from inspect_tinker.errors import UsageError
from inspect_tinker.provider.base_model import BUNDLED_MODEL_NAME
from inspect_tinker.provider.settings import UNREACHABLE_TIMEOUT_SECONDS, Device, Distributed, Precision
from inspect_tinker.tracking.settings import DeliverySettings, WebhookEvent

# Upper bounds of the run's length. A round evaluates every task, so a thousand rounds is days
# of evaluation alone; a million steps in a round is weeks on one GPU for most models. Larger
# values are typos (10**9 steps) that would run forever, and are refused as such.
MAX_ROUNDS = 1_000
MAX_STEPS_PER_ROUND = 1_000_000


def absolute_path(path: Path | str) -> Path:
    """`path` made absolute against the working directory (`~` expanded, symlinks kept).

    Every path a run records is absolute, so that `inspect-tinker resume`, `sync` or `report` run
    from any other directory find the same files.
    """
    return Path(path).expanduser().absolute()


def is_local_tracking_folder(uri: str) -> bool:
    """An MLflow tracking URI without a scheme is a local folder, except the names MLflow gives meaning to."""
    return not urlsplit(uri).scheme and uri not in ("databricks", "databricks-uc", "uc")


def _local_path_spec(value: str) -> str:
    """A model or tokenizer name written as a path (`./model`, `~/model`) made absolute; other names unchanged."""
    return str(absolute_path(value)) if value.startswith((".", "~")) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# Query parameters that carry credentials in the URLs of common services: `token`,
# `access_token`, `api_key`, `X-Amz-Signature` and `X-Amz-Credential` (S3 presigned URLs),
# `sig` (Azure SAS), `sslpassword` (libpq), `secret`, ...
_CREDENTIAL_WORDS = ("token", "secret", "password", "passwd", "pwd", "signature", "credential", "apikey", "api_key",
                     "api-key", "access_key", "private_key")
_CREDENTIAL_NAMES = {"key", "sig", "auth"}


def _url_credentials(url: str) -> list[str]:
    """What in `url` is a credential: `password` (of `user:password@`) and the names of its
    credential-like query parameters; empty when it holds none."""
    parts = urlsplit(url)
    try:
        found = ["password"] if parts.password is not None else []
    except ValueError:  # an unparseable port; the URL's owner reports that
        found = []
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        lowered = name.lower()
        if lowered in _CREDENTIAL_NAMES or any(word in lowered for word in _CREDENTIAL_WORDS):
            found.append(name)
    return found


def _refuse_credentials(url: str, fix: str) -> None:
    """ValueError naming what in `url` is a credential (never its value) and how to pass it instead."""
    found = _url_credentials(url)
    if found:
        raise ValueError(
            f"the URL holds a credential ({', '.join(found)}), and the configuration is printed and saved in the "
            f"run folder; {fix}"
        )


SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# Scorers of the built-in tasks. Each is chosen by `name`; a bare string is shorthand for
# `{name: STRING}`. Inspect's own scorers are used wherever one fits (see loop/eval_tasks.py).


class AnswerIncludedScorer(_Strict):
    """The expected answer (or an alias) appears in the response, normalised (the default)."""

    name: Literal["answer_included"] = "answer_included"


class ExactScorer(_Strict):
    """The normalised response equals the expected answer (Inspect's `exact`)."""

    name: Literal["exact"]


class MatchScorer(_Strict):
    """The response starts or ends with the expected answer (Inspect's `match`)."""

    name: Literal["match"]
    location: Literal["begin", "end", "any", "exact"] = Field("end", description="Where the answer must appear.")
    ignore_case: bool = Field(True, description="Compare without regard to case.")


class F1Scorer(_Strict):
    """Token F1 between response and expected answer, 0..1 per sample (Inspect's `f1`)."""

    name: Literal["f1"]


class NumericScorer(_Strict):
    """A number in the response equals the expected number within a tolerance."""

    name: Literal["numeric"]
    tolerance: float = Field(0.0, ge=0.0, description="Absolute tolerance: |answer - expected| <= tolerance.")
    relative_tolerance: float = Field(0.0, ge=0.0, description="Relative tolerance, a fraction of |expected|.")
    location: Literal["first", "last", "any"] = Field("last", description="Which number of the response counts.")


class PatternScorer(_Strict):
    """A regular expression extracts the answer, compared with the expected one (Inspect's `pattern`)."""

    name: Literal["pattern"]
    pattern: str = Field(description="Regular expression; its first capture group (or whole match) is the answer.")
    ignore_case: bool = Field(True, description="Match and compare without regard to case.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression ({err})") from None
        return value


class ChoiceScorer(_Strict):
    """The letter the model picked is the right choice (Inspect's `choice`); multiple-choice tasks only."""

    name: Literal["choice"]


class ModelGradedScorer(_Strict):
    """A judge model grades each answer against the expected one (Inspect's `model_graded_fact`)."""

    name: Literal["model_graded"]
    judge: str | None = Field(
        None,
        description="Inspect model name of the judge (for example `openai/gpt-4o-mini`); "
        "none means the local base model, without the adapter.",
    )
    judge_max_tokens: int = Field(256, ge=1, description="Tokens the judge may write (its reasoning, then `GRADE: C|I`).")
    partial_credit: bool = Field(False, description="Let the judge give P (0.5) for partly right answers.")
    template: str | None = Field(None, description="Grading prompt template; Inspect's default when none.")
    instructions: str | None = Field(None, description="Grading instructions; Inspect's default when none.")


ScorerConfig = Annotated[
    AnswerIncludedScorer | ExactScorer | MatchScorer | F1Scorer | NumericScorer | PatternScorer
    | ChoiceScorer | ModelGradedScorer,
    Field(discriminator="name"),
]
SCORER_MODELS: dict[str, type[_Strict]] = {
    get_args(m.model_fields["name"].annotation)[0]: m  # the one value of its `name` Literal
    for m in (AnswerIncludedScorer, ExactScorer, MatchScorer, F1Scorer, NumericScorer, PatternScorer,
              ChoiceScorer, ModelGradedScorer)
}

# Names that stand for the packaged general-knowledge task: `simple_qa` is what the original
# tinker-eval-loop demo config called its small general-knowledge QA task.
PACKAGED_TASK_ALIASES = {"simple_qa": "inspect_tinker/general_knowledge", "general_knowledge": "inspect_tinker/general_knowledge"}


class EvalTaskConfig(_Strict):
    """One evaluation task.

    A bare string in `eval_tasks` is shorthand: `x.jsonl` is `{path: x.jsonl}` (built-in QA);
    anything else is `{task: STRING}`: `file.py@name`, a registry name such as
    `inspect_evals/gsm8k`, or `simple_qa` (the packaged general-knowledge task).
    """

    type: Literal["qa", "multiple_choice", "inspect"] | None = Field(
        None,
        description="`qa`: JSONL of {question, answer, aliases?}; `multiple_choice`: JSONL of "
        "{question, choices, answer}; `inspect`: an Inspect task (`task`). Inferred from `path` / `task`.",
    )
    path: Path | None = Field(None, description="JSONL file of a built-in task (`qa` or `multiple_choice`).")
    task: str | None = Field(
        None, description="Inspect task: `path/to/tasks.py@task_name`, `tasks.py`, or an installed registry name."
    )
    task_args: dict[str, Any] = Field(default_factory=dict, description="Arguments passed to the Inspect task function.")
    name: str | None = Field(None, description="Name shown in output and logs; defaults to the file stem or task name.")
    role: Literal["gate", "confirm"] = Field(
        "gate",
        description="`gate`: counts towards the bar. `confirm`: reported every round, never gates, never feeds data selection.",
    )
    weight: float = Field(1.0, gt=0.0, description="Weight of this task in the aggregate score of the gating tasks.")
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="This task's own bar, checked besides the aggregate `eval_threshold`."
    )
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N samples.")
    max_tokens: int | None = Field(None, ge=1, le=4096, description="Overrides `generation.max_tokens` for this task.")
    scorer: ScorerConfig | None = Field(
        None,
        description="How answers are scored: `answer_included` (default for `qa`), `exact`, `match`, `f1`, "
        "`numeric`, `pattern`, `choice` (default and only choice for `multiple_choice`), `model_graded`. "
        "For `inspect` tasks, replaces the task's own scorer.",
    )

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, value: Path | None) -> Path | None:
        return None if value is None else absolute_path(value)

    @field_validator("task")
    @classmethod
    def _absolute_task_file(cls, value: str | None) -> str | None:
        # Only file references move; registry names (`inspect_evals/gsm8k`) stay as written.
        file = None if value is None else _task_file(value)
        return value if file is None else str(absolute_path(file)) + value[len(str(file)):]

    @field_validator("scorer", mode="before")
    @classmethod
    def _scorer_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in SCORER_MODELS:
                near = difflib.get_close_matches(value, list(SCORER_MODELS), n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"choose one of {', '.join(SCORER_MODELS)}"
                raise ValueError(f"unknown scorer {value!r}; {hint}")
            return {"name": value}
        return value

    @model_validator(mode="after")
    def _infer_type(self) -> "EvalTaskConfig":
        if (self.path is None) == (self.task is None):
            raise ValueError("give either `path` (a JSONL file of a built-in task) or `task` (an Inspect task)")
        kind = self.type or ("inspect" if self.task is not None else "qa")
        if self.task in PACKAGED_TASK_ALIASES:
            object.__setattr__(self, "name", self.name or self.task)
            object.__setattr__(self, "task", PACKAGED_TASK_ALIASES[self.task])
        if kind == "inspect" and self.task is None:
            raise ValueError("type `inspect` needs `task` (file.py@name or a registry name), not `path`")
        if kind != "inspect" and self.path is None:
            raise ValueError(f"type `{kind}` needs `path` (a JSONL file), not `task`")
        if kind == "multiple_choice" and self.scorer is not None and self.scorer.name != "choice":
            raise ValueError("multiple_choice tasks are scored by `choice` (the letter picked); remove `scorer`")
        if kind == "qa" and self.scorer is not None and self.scorer.name == "choice":
            raise ValueError("the `choice` scorer needs a multiple_choice task (records with `choices`)")
        if self.role == "confirm" and self.threshold is not None:
            raise ValueError("confirmation tasks never gate; remove `threshold` or set `role: gate`")
        object.__setattr__(self, "type", kind)  # validate_assignment would re-run this validator
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.path is not None:
            return self.path.stem
        spec = self.task or ""
        return spec.split("@", 1)[1] if "@" in spec else Path(spec).stem if spec.endswith(".py") else spec.split("/")[-1]


def task_shorthand(value: str) -> dict[str, Any]:
    """Expand a bare string of `eval_tasks` into the mapping it stands for."""
    if value.lower().endswith((".jsonl", ".json")):
        return {"path": value}
    if value in PACKAGED_TASK_ALIASES:
        return {"task": PACKAGED_TASK_ALIASES[value], "name": value}
    return {"task": value}


def task_entries(value: Any) -> Any:
    """A task list as written (one entry or a list, entries mappings or shorthand strings) as a list of mappings."""
    if isinstance(value, (str, dict)):
        value = [value]
    if isinstance(value, list):
        return [task_shorthand(v) if isinstance(v, str) else v for v in value]
    return value


class GenerationConfig(_Strict):
    """How the model answers during evaluation. Pinned for the whole run so rounds compare."""

    max_tokens: int = Field(32, ge=1, le=4096, description="New tokens generated per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    system_prompt: str | None = Field(None, description="System message put before every question; none by default.")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings, cut from the answer.")
    precision: Precision = Field(
        "auto",
        description="Sampling precision of the local backend. `fp32`: the greedy answers of the adapter reloaded in fp32. "
        "`bf16`: on CPU from a copy of the weights in bf16 with the adapter merged in (1.8x to 2.6x as fast on the bundled model "
        "on an AVX-512 BF16 CPU, and 17 of its 44 benchmark answers differ; bench/README.md), on GPU under bf16 autocast. "
        "`auto`: evaluations, which the gate compares across rounds, in fp32 on CPU; RL rollouts, whose importance "
        "ratio corrects for the difference, and everything on GPU in the training precision (`precision`). "
        "The tinker backend samples as the service does.",
    )


class RLConfig(_Strict):
    """Reinforcement-learning rounds (`method: rl` or `sft_then_rl`): the reward tasks' own scorers are the rewards.

    Each optimizer step samples `group_size` completions of `prompts_per_step` prompts of each
    reward task (an Inspect eval, `rollout_round_<n>`, epochs = group_size) with the current
    weights, and trains on the sampled tokens with group-relative advantages.
    """

    tasks: list[EvalTaskConfig] = Field(
        default_factory=list,
        description="Reward tasks, in the entry shape of `eval_tasks` (`task`, `task_args`, `limit`, `scorer`, "
        "`max_tokens`); each sample's first score (0..1) is its reward. Keep their prompts apart from the gating tasks'.",
    )
    group_size: int = Field(4, ge=2, description="Completions sampled per prompt; advantages are relative to the group.")
    prompts_per_step: int = Field(8, ge=1, description="Prompts of each reward task sampled per optimizer step.")
    loss: Literal["importance_sampling", "ppo"] = Field(
        "importance_sampling", description="The policy loss, as Tinker's loss functions name them."
    )
    clip_low: float = Field(0.8, gt=0.0, le=1.0, description="`ppo`: the ratio's lower clip.")
    clip_high: float = Field(1.2, ge=1.0, description="`ppo`: the ratio's upper clip.")
    max_tokens: int | None = Field(
        None, ge=1, le=4096, description="Tokens sampled per completion; none: the task's own, else generation.max_tokens."
    )
    temperature: float = Field(1.0, gt=0.0, le=2.0, description="Sampling temperature of the rollouts (never greedy: a group must differ).")

    @field_validator("tasks", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        return task_entries(value)


class TokenPrices(_Strict):
    """`price_per_million_tokens`: what the Tinker service charges for the base model, per million
    tokens of each kind it bills (its price list gives them per model), in any one currency."""

    train: float = Field(ge=0, description="Per million tokens trained (the examples read by forward and backward passes).")
    prefill: float = Field(ge=0, description="Per million prompt tokens read to sample from.")
    sample: float = Field(ge=0, description="Per million tokens sampled.")


class TuneConfig(_Strict):
    """`inspect-tinker tune`: the search space and the study. Each trial is a short run of the config."""

    learning_rate: tuple[float, float] = Field(
        (1e-4, 3e-3), description="Lowest and highest starting learning rate tried (sampled on a log scale)."
    )
    lora_rank: list[int] = Field([4, 8, 16, 32], min_length=1, description="LoRA ranks tried.")
    steps_per_round: tuple[int, Annotated[int, Field(le=MAX_STEPS_PER_ROUND)]] = Field(
        (4, 24), description="Fewest and most steps per round tried."
    )
    max_rounds: int = Field(2, ge=1, le=MAX_ROUNDS, description="Rounds in each trial (a short loop).")
    random_trials: int = Field(4, ge=1, description="Trials sampled at random before TPE models the results.")
    prune_after_trials: int = Field(
        2, ge=0, description="Trials that finish before any is pruned; later ones stop early when below the median."
    )
    storage: str | None = Field(
        None,
        description="Optuna storage shared by every worker: a database URL without credentials "
        "(postgresql+psycopg://user@host/db), or the name of a secret (environment variable or secrets-file key) "
        "holding the whole URL, password included (TUNE_STORAGE_URL); none: a SQLite file study.db in the tune folder.",
    )
    study_name: str | None = Field(None, description="The study's name in the storage; defaults to the tune folder's name.")

    @field_validator("learning_rate", "steps_per_round")
    @classmethod
    def _ordered(cls, value: tuple) -> tuple:
        low, high = value
        if not 0 < low <= high:
            raise ValueError(f"give [low, high] with 0 < low <= high (got [{low}, {high}])")
        return value

    @field_validator("lora_rank")
    @classmethod
    def _positive_ranks(cls, value: list[int]) -> list[int]:
        if any(r < 1 for r in value):
            raise ValueError("LoRA ranks must be at least 1")
        return value

    @field_validator("storage")
    @classmethod
    def _storage_without_credentials(cls, value: str | None) -> str | None:
        if value is not None and not SECRET_NAME.fullmatch(value):
            _refuse_credentials(
                value,
                "put the whole URL in a secret and name it instead: export TUNE_STORAGE_URL='<the URL>' (or "
                "TUNE_STORAGE_URL = \"<the URL>\" in the secrets_file) and set tune.storage: TUNE_STORAGE_URL "
                "(or --storage TUNE_STORAGE_URL)",
            )
        return value


def _tracking(key: str):
    # A tracking key's default, bounds and description, stated once in tracking/settings.py.
    return DeliverySettings.model_fields[key]


class Config(_Strict):
    """Everything a run needs. Defaults are stated with each key."""

    # What to train.
    base_model: str = Field(
        BUNDLED_MODEL_NAME,
        description="Bundled model name, a local Hugging Face model folder, or a hub id already in the local cache.",
    )
    backend: Literal["local", "tinker"] = Field(
        "local",
        description="Training backend. `local`: PyTorch + PEFT on CPU or GPU (`pip install 'inspect-tinker[local]'`). "
        "`tinker`: the managed Tinker service (key in the TINKER_API_KEY environment variable).",
    )
    tinker_base_url: str | None = Field(
        None, description="Tinker service URL; none means $TINKER_BASE_URL, else the production service."
    )
    tinker_tokenizer: str | None = Field(
        None,
        description="Tokenizer (local folder or hub id) whose chat template renders examples for the Tinker backend; "
        "none means the one the service names for base_model, downloaded from the Hugging Face hub. "
        "When set, `learning_rate: auto` reads the hidden size from its config.json, else from base_model's on the hub.",
    )
    tinker_unreachable_timeout: float = Field(
        UNREACHABLE_TIMEOUT_SECONDS, gt=0,
        description="Seconds the Tinker service may go without answering (connection refused, no reply) while the run "
        "waits on a result, in training or sampling; then the run ends with a message and can be resumed. "
        "The SDK alone would wait for ever.",
    )
    tinker_capacity_timeout: float = Field(
        3600.0, ge=0,
        description="Seconds to keep asking for a training run while the Tinker service refuses one for lack of room "
        "(HTTP 429, or the server's limit on concurrent LoRA adapters): the run waits, retrying with backoff, and says "
        "so once; then it ends with a message. 0: do not wait. `tune`'s workers queue for room this way.",
    )
    prune_checkpoints: bool = Field(
        False,
        description="At the end of a run on the Tinker service, delete the checkpoints it stored there (each is billed) "
        "but the best and the last round's training state and sampler weights, as `inspect-tinker prune RUN --delete`.",
    )
    device: Device = Field("auto", description="`auto` uses CUDA when present, else CPU.")
    method: Literal["sft", "rl", "sft_then_rl"] = Field(
        "sft",
        description="How rounds train: `sft` on train_file; `rl` on the rewards of `rl.tasks`; `sft_then_rl`: "
        "round 1 on train_file, every later round RL.",
    )
    train_file: Path | None = Field(
        None,
        description="Training data (needed by `sft` and `sft_then_rl`): JSONL, JSON, CSV or Parquet of "
        "{instruction, input?, output}, {prompt, completion} or {messages} records.",
    )
    rl: RLConfig | None = Field(None, description="The RL rounds' reward tasks and sampling (`method: rl` or `sft_then_rl`).")
    strict: bool = Field(False, description="Reject the run on any invalid training record instead of dropping it.")
    data: DataConfig = Field(default_factory=DataConfig, description="Reading, checks, deduplication, decontamination.")
    max_seq_length: int = Field(512, ge=16, description="Longer examples are cut to this many tokens.")
    renderer_name: str | None = Field(
        None,
        description="How conversations are rendered for training and evaluation, by tinker-cookbook's names: `llama3`, "
        "`qwen3`, `qwen3_disable_thinking`, `qwen3_instruct`, `role_colon`, or `tokenizer` (the tokenizer's own chat "
        "template); none means the model family's recommended one (data/renderers.py).",
    )

    # How to evaluate.
    eval_tasks: list[EvalTaskConfig] = Field(
        description="Evaluation tasks; the run's score is the weighted mean of the gating tasks' scores."
    )
    eval_threshold: float = Field(
        0.75, ge=0.0, le=1.0,
        description="The bar: a round whose aggregate score reaches it (and every task its own threshold) ends the run.",
    )
    gate_on: Literal["point", "lower_bound"] = Field(
        "point",
        description="Compare the bar with the score itself (`point`) or with the lower end of its 95% interval (`lower_bound`).",
    )
    regression_guard: bool = Field(
        True,
        description="Also evaluate the packaged general-knowledge task every round (never gates) to show lost general ability.",
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Pinned evaluation decoding.")
    eval_batch_size: int = Field(16, ge=1, description="Questions generated together in one batch.")
    baseline_eval: bool = Field(True, description="Evaluate the untrained model first, as round 0.")

    # How to train.
    max_rounds: int = Field(
        3, ge=1, le=MAX_ROUNDS, description=f"At most this many train-then-evaluate rounds (at most {MAX_ROUNDS:,})."
    )
    price_per_million_tokens: TokenPrices | None = Field(
        None,
        description="Prices that turn each round's tokens (recorded always) into a cost and the run's running total, "
        "in events.jsonl, the summary, the report and the tracking records; none: tokens only.",
    )
    max_cost: float | None = Field(
        None, gt=0,
        description="Stop the run at the first round boundary where its total cost has reached this much (same "
        "currency as price_per_million_tokens, which it needs), as the last of max_rounds stops it; none: no limit.",
    )
    steps_per_round: int = Field(
        5, ge=1, le=MAX_STEPS_PER_ROUND, description=f"Optimizer steps in each round (at most {MAX_STEPS_PER_ROUND:,})."
    )
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step.")
    micro_batch_size: int | None = Field(
        None, ge=1, description="Examples per forward pass; smaller than batch_size means gradient accumulation."
    )
    learning_rate: float | Literal["auto"] = Field(
        2e-4,
        description="AdamW learning rate of round 1; `auto`: the recommended LoRA rate for the model family "
        "(Llama, Qwen) and hidden size.",
    )
    lr_decay: float = Field(
        0.6, gt=0.0, le=1.0,
        description="The learning rate is multiplied by this after a round below the bar "
        "(never into a round that brings new records from data selection).",
    )
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="Shape of the rate within each round, after warmup: `constant`, or `linear` / `cosine` decay from "
        "the round's learning rate towards 0 at the round's last step (per round, as `more_steps` changes their length).",
    )
    warmup_steps: int = Field(
        0, ge=0, description="The run's first N steps, over which the rate rises linearly to its full value (once, in round 1)."
    )
    max_grad_norm: float = Field(1.0, ge=0.0, description="Clip the gradient's global norm to this before each step; 0 turns clipping off.")
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2.")
    adam_eps: float = Field(1e-8, gt=0.0, description="AdamW epsilon.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay on the LoRA weights.")
    precision: Precision = Field(
        "auto",
        description="Training precision: `bf16` autocast or `fp32`. `auto`: bf16 on GPU; on CPU bf16 where a short matmul probe "
        "measures it at least 1.25x as fast as fp32, else fp32 (measured once per CPU model, torch version and thread count, "
        "cached; the choice and why are printed and in the backend_ready event).",
    )
    packing: bool = Field(
        True,
        description="Pack a micro-batch's examples into rows as long as its longest example, attention staying within "
        "each example, so short examples share a row instead of being padded. Off: bucket by length and pad.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory for large models, about 30 % more compute."
    )
    distributed: Distributed = Field(
        "ddp",
        description="Under torchrun or accelerate launch: `ddp` gives every process a full copy of the model; `fsdp` "
        "shards the base weights and the adapter over the processes (PyTorch FSDP2), for models that do not fit one GPU.",
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank r.")
    lora_alpha: float = Field(32.0, gt=0.0, description="LoRA scaling alpha (the update is scaled by alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get adapters: `all-linear` or a list of module names."
    )
    seed: int = Field(
        0, ge=0, le=2**32 - 1,  # the range NumPy and the model providers accept
        description="Seeds adapter init, data order and sampling; a CPU run is deterministic.",
    )

    # How the next round's hyperparameters follow from the scores (policies/hyperparameters.py).
    policy: Literal["lr_decay", "plateau", "more_steps", "grow_rank"] = Field(
        "lr_decay",
        description="`lr_decay`: decay the learning rate after every round below the bar; `plateau`: only when "
        "the score did not beat the best by min_delta; `more_steps`: raise steps_per_round while the score rises; "
        "`grow_rank`: grow the LoRA rank when the score stalls.",
    )
    min_delta: float = Field(0.01, ge=0.0, le=1.0, description="The smallest score gain that counts as improving.")
    steps_growth: float = Field(1.5, gt=1.0, description="`more_steps`: steps per round are multiplied by this.")
    max_steps_per_round: int | None = Field(
        None, ge=1, le=MAX_STEPS_PER_ROUND,
        description="The most steps per round `more_steps` and focus_weight's added steps may reach; none: no cap.",
    )
    rank_growth: int = Field(2, ge=2, description="`grow_rank`: the LoRA rank is multiplied by this.")
    max_lora_rank: int = Field(64, ge=1, description="`grow_rank`: the largest LoRA rank.")

    # Failure-driven data selection (policies/selection.py).
    candidate_file: Path | None = Field(
        None,
        description="Candidate pool (training records): after a round below the bar, records relevant to the "
        "failed gate questions are added from it. None: no selection.",
    )
    select_per_round: int = Field(8, ge=0, description="The most candidate records added after one evaluation.")
    retrieval: Literal["bm25", "embedding"] = Field(
        "bm25", description="How candidates are matched to failed questions: `bm25` (lexical) or `embedding` (MiniLM)."
    )
    upweight_repeats: int = Field(
        0, ge=0, description="Repeat the training record that best covers each failed question this many extra times; 0: off."
    )
    # Off by default: on the demo and the selection benchmark it changed no round's score (by the
    # round a fact still failed, its record's own loss was already far below the bound; the
    # failure was recall under paraphrase), while it adds steps (bench/README.md).
    focus_weight: int = Field(
        1, ge=1,
        description="After a round below the bar, the records data selection added and the training records of the "
        "questions still failing are drawn this many times in the next round while their own loss is above "
        "focus_loss_bound, with the steps added that carry the extra copies (policies/focus.py); 1: off (the default: "
        "it was not seen to pay, bench/README.md), 3 for example to try it.",
    )
    focus_loss_bound: float = Field(
        0.05, gt=0.0,
        description="The mean loss per target token below which a focus record counts as learned and is drawn once again.",
    )

    # Hyperparameter search (`inspect-tinker tune`).
    tune: TuneConfig = Field(default_factory=TuneConfig, description="Search space and study of `inspect-tinker tune`.")

    # Checkpoints, resume and rollback.
    save_every_steps: int | None = Field(
        None, ge=1, description="Also save a resumable checkpoint every N steps inside a round (for long rounds)."
    )
    keep_last: int = Field(
        2, ge=1, description="Optimizer states kept for the last N rounds (and the best); adapters are always kept."
    )
    on_regression: Literal["continue", "rollback"] = Field(
        "continue",
        description="After a round scoring below the best: `continue` from it, or `rollback` to the best round's adapter and optimizer.",
    )

    # Where results go.
    output_dir: Path = Field(Path("runs"), description="Run folders are created under this folder.")
    run_name: str | None = Field(None, description="Run folder name (a plain name, no path); defaults to a timestamp.")

    # Where every event goes besides the run folder: keys stated in tracking/settings.py, beside the
    # sinks that read them (the tracking hooks share their defaults). No secret is ever a key.
    secrets_file: Path | None = _tracking("secrets_file")
    mlflow_tracking_uri: str | None = _tracking("mlflow_tracking_uri")
    mlflow_experiment: str = _tracking("mlflow_experiment")
    evalops_enabled: bool = _tracking("evalops_enabled")
    evalops_test_suite_id: str | None = _tracking("evalops_test_suite_id")
    webhooks: list[str] = _tracking("webhooks")
    webhook_events: list[WebhookEvent] = _tracking("webhook_events")
    delivery_timeout_seconds: float = _tracking("delivery_timeout_seconds")
    delivery_max_backoff_seconds: float = _tracking("delivery_max_backoff_seconds")
    delivery_flush_seconds: float = _tracking("delivery_flush_seconds")

    @field_validator("train_file", "candidate_file", "secrets_file", "output_dir")
    @classmethod
    def _absolute_paths(cls, value: Path | None) -> Path | None:
        return None if value is None else absolute_path(value)

    @field_validator("base_model", "tinker_tokenizer")
    @classmethod
    def _absolute_model_folder(cls, value: str | None) -> str | None:
        return None if value is None else _local_path_spec(value)

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _absolute_tracking_folder(cls, value: str | None) -> str | None:
        return str(absolute_path(value)) if value is not None and is_local_tracking_folder(value) else value

    @field_validator("eval_tasks", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        return task_entries(value)

    @field_validator("eval_tasks")
    @classmethod
    def _at_least_one_task(cls, value: list[EvalTaskConfig], info: ValidationInfo) -> list[EvalTaskConfig]:
        # `inspect-tinker data check` validates a config without tasks: it needs them only to decontaminate.
        if not value and (info.context or {}).get("need_eval_tasks", True):
            raise ValueError("list at least one evaluation task")
        return value

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _check_learning_rate(cls, value: Any) -> Any:
        # One message instead of pydantic's two (one per branch of `float | "auto"`).
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number or auto (got {value!r})")
        if not 0 < value <= 1:
            raise ValueError(f"must be above 0 and at most 1 (got {value})")
        return value

    @model_validator(mode="after")
    def _check_backend_keys(self) -> "Config":
        """Keys the Tinker service has no equivalent for are refused rather than silently ignored.

        Every AdamW key has one (the service's AdamParams takes betas, eps, weight decay and
        clipping); the service chooses the precision, the batching and the adapter's shape itself.
        """
        if self.backend != "tinker":
            if self.prune_checkpoints:
                raise ValueError("prune_checkpoints: only with backend: tinker (a local run's checkpoints are folders "
                                 "in the run folder; keep_last bounds their optimizer states)")
            return self
        local_only = ("device", "micro_batch_size", "lora_alpha", "lora_dropout", "lora_target_modules", "distributed",
                      "precision", "packing", "gradient_checkpointing")
        refused = [key for key in local_only if getattr(self, key) != type(self).model_fields[key].default]
        if refused:
            raise ValueError(
                f"{', '.join(refused)}: not available with backend: tinker (the service chooses these itself); "
                "remove them or use backend: local"
            )
        return self

    @model_validator(mode="after")
    def _check_method(self) -> "Config":
        if self.method != "rl" and self.train_file is None:
            raise ValueError(f"missing required key 'train_file' (method {self.method} trains on it; method: rl needs none)")
        if self.method == "sft" and self.rl is not None:
            raise ValueError("rl: only read by method: rl or sft_then_rl; set method, or remove rl")
        if self.method != "sft" and (self.rl is None or not self.rl.tasks):
            raise ValueError(f"method {self.method} needs rl.tasks: the Inspect tasks whose scorers are the rewards")
        if self.method != "sft" and self.candidate_file is not None:
            # Selection adds records after an evaluation (round 1's at the earliest), and every round
            # after round 1 of an RL method trains on rewards, never on records: they would go unread.
            raise ValueError(f"candidate_file: failure-driven selection adds training records, which method "
                             f"{self.method}'s RL rounds never train on; remove candidate_file or use method: sft")
        return self

    @model_validator(mode="after")
    def _check_policy(self) -> "Config":
        if self.policy != "grow_rank":
            return self
        if self.backend != "local":
            raise ValueError("policy: grow_rank needs backend: local (the adapter is widened in this process)")
        if self.distributed == "fsdp":
            # Widening replaces the adapter's tensors, which FSDP holds sharded; it would need a re-shard.
            raise ValueError("policy: grow_rank cannot be combined with distributed: fsdp; use distributed: ddp")
        if self.on_regression == "rollback":
            # A rollback would load a smaller adapter than the grown one; adapters only grow.
            raise ValueError("policy: grow_rank cannot be combined with on_regression: rollback; choose one")
        if self.max_lora_rank < self.lora_rank:
            raise ValueError(f"max_lora_rank ({self.max_lora_rank}) is below lora_rank ({self.lora_rank}); raise it")
        return self

    @model_validator(mode="after")
    def _check_tasks(self) -> "Config":
        # No tasks at all is the `inspect-tinker data check` case, judged by _at_least_one_task.
        if self.eval_tasks and not any(t.role == "gate" for t in self.eval_tasks):
            raise ValueError("eval_tasks: at least one task must gate (role: gate); confirmation tasks never do")
        names = [t.display_name for t in self.eval_tasks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"eval_tasks: names must differ, {', '.join(twice)} appears twice; set `name` on one")
        return self

    @field_validator("webhooks")
    @classmethod
    def _webhooks_are_secret_names(cls, value: list[str]) -> list[str]:
        for i, name in enumerate(value):
            # The value is never echoed: it may be a URL with its token.
            if not SECRET_NAME.fullmatch(name):
                raise ValueError(
                    f"webhooks[{i}] must name an environment variable or secrets-file key that holds the URL "
                    "(for example SLACK_WEBHOOK_URL), not the URL itself: webhook URLs carry tokens, "
                    "and the configuration is saved in the run folder"
                )
        return value

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _no_credentials_in_uri(cls, value: str | None) -> str | None:
        if value is not None:
            _refuse_credentials(
                value,
                "remove it and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
                "in the environment instead",
            )
        return value

    @field_validator("renderer_name")
    @classmethod
    def _known_renderer(cls, value: str | None) -> str | None:
        if value is not None and value not in RENDERERS:
            raise ValueError(f"unknown renderer {value!r}; the renderers are: {', '.join(RENDERERS)}")
        return value

    @field_validator("tinker_base_url")
    @classmethod
    def _no_credentials_in_service_url(cls, value: str | None) -> str | None:
        if value is not None:
            _refuse_credentials(value, "remove it; the service's key goes in TINKER_API_KEY")
        return value

    @field_validator("run_name")
    @classmethod
    def _plain_folder_name(cls, value: str | None) -> str | None:
        # The run folder is output_dir / run_name: a path here would put it somewhere else.
        if value is not None and (value in ("", ".", "..") or any(c in value for c in "/\\\0")):
            raise ValueError(
                f"must be a plain folder name, without / or \\ and not . or .. (got {value!r}); "
                "the run folder is made under output_dir, so set output_dir to choose where"
            )
        return value

    @model_validator(mode="after")
    def _micro_batch_within_batch(self) -> "Config":
        if self.micro_batch_size is not None and self.micro_batch_size > self.batch_size:
            raise ValueError(
                f"micro_batch_size ({self.micro_batch_size}) is larger than batch_size ({self.batch_size}): a "
                "micro-batch is a part of one batch; lower micro_batch_size or raise batch_size"
            )
        return self

    @model_validator(mode="after")
    def _max_cost_needs_prices(self) -> "Config":
        if self.max_cost is not None and self.price_per_million_tokens is None:
            raise ValueError("max_cost needs price_per_million_tokens (train, prefill, sample) to count the cost with")
        return self

    @model_validator(mode="after")
    def _evalops_needs_a_suite(self) -> "Config":
        if self.evalops_enabled and not self.evalops_test_suite_id:
            raise ValueError("evalops_enabled needs evalops_test_suite_id: the EvalOps test suite that receives the rounds")
        return self


def _read_file(path: Path) -> dict[str, Any]:
    if path.is_dir():  # "does not exist" would send the user looking for a typo
        inside = sorted(f.name for f in path.iterdir() if f.suffix.lower() in (".json", ".yaml", ".yml", ".toml"))
        example = path / (inside[0] if inside else "config.yaml")
        raise UsageError(f"config file {path} is a folder, not a file; name the config file in it, e.g. {example}.")
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist.")
    text = decode_utf8(path.read_bytes(), path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise UsageError(f"config file {path}: unknown format {suffix!r}; use .json, .yaml, .yml or .toml.")
    except (json.JSONDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"config file {path} is not valid {suffix[1:].upper()}: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values at the top level.")
    return data


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make relative paths in a config file relative to the file, not to the working directory."""

    def fix(p: Any) -> Any:
        return str(base / Path(p).expanduser()) if isinstance(p, str) else p

    def fix_task(spec: Any) -> Any:
        # Only file references move; registry names (`inspect_evals/gsm8k`) stay as written.
        if not isinstance(spec, str):
            return spec
        file, at, name = spec.partition("@")
        return fix(file) + at + name if at or file.endswith(".py") else spec

    for key in ("train_file", "output_dir", "secrets_file", "candidate_file"):
        if key in data:
            data[key] = fix(data[key])
    uri = data.get("mlflow_tracking_uri")
    if isinstance(uri, str) and is_local_tracking_folder(uri):
        data["mlflow_tracking_uri"] = fix(uri)
    def fix_tasks(tasks: Any) -> Any:
        tasks = task_entries(tasks)
        if not isinstance(tasks, list):
            return tasks
        return [
            {**t, **({"path": fix(t["path"])} if "path" in t else {}), **({"task": fix_task(t["task"])} if "task" in t else {})}
            if isinstance(t, dict) else t
            for t in tasks
        ]

    if "eval_tasks" in data:
        data["eval_tasks"] = fix_tasks(data["eval_tasks"])
    if isinstance(data.get("rl"), dict) and "tasks" in data["rl"]:
        data["rl"]["tasks"] = fix_tasks(data["rl"]["tasks"])
    for key in ("base_model", "tinker_tokenizer"):
        value = data.get(key)
        if isinstance(value, str) and value.startswith((".", "~")):
            data[key] = fix(value)


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _where(loc: tuple) -> tuple[str, type[BaseModel]]:
    """A readable key path (`eval_tasks[0].scorer.tolerance`) and the model owning its last key."""
    text, owner, parts = "", Config, list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if owner is EvalTaskConfig and part == "scorer" and parts and parts[0] in SCORER_MODELS:
            owner = SCORER_MODELS[parts.pop(0)]  # pydantic puts the union's tag in the path; users never wrote it
        else:
            field = owner.model_fields.get(str(part))
            nested = {"generation": GenerationConfig, "data": DataConfig, "eval_tasks": EvalTaskConfig,
                      "tune": TuneConfig, "rl": RLConfig, "tasks": EvalTaskConfig}.get(str(part))
            if field is not None and nested is not None and parts:
                text, owner = (f"{text}.{part}" if text else str(part)), nested
                continue
        text = f"{text}.{part}" if text else str(part)
    return text, owner


def _explain(err: ValidationError, source: str, given: dict[str, str]) -> str:
    """One line per problem; a problem in a value from the command line names the option it came from."""
    lines, from_options = [], []
    for e in err.errors():
        loc, owner = _where(e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            near = difflib.get_close_matches(key, _valid_keys(owner), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(_valid_keys(owner))}"
            line = f"unknown key {loc!r}{hint}"
        elif e["type"] == "missing":
            line = f"missing required key {loc!r}"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = "" if e["type"] == "value_error" else f" (got {e.get('input')!r})"
            if loc.startswith("data.fields.") and loc.endswith("[key]"):
                shown += f"; write our name first, then yours: {{instruction: {e['loc'][2]}}}"
            line = f"{loc}: {msg}{shown}" if loc else msg
        option = _option_for(loc, given)
        from_options.append(option is not None)
        lines.append(f"{line} (from {option})" if option else line)
    where = "on the command line" if all(from_options) else f"in {source}"
    return f"invalid configuration {where}:\n  " + "\n  ".join(lines)


def _option_for(loc: str, given: dict[str, str]) -> str | None:
    """The command-line option (`--set eval_tasks`) that set the key at `loc` (`eval_tasks[0].path`), if one did."""
    return next((given[k] for k in given if loc == k or loc.startswith((f"{k}.", f"{k}["))), None)


def parse_override(text: str) -> tuple[str, Any]:
    """Split a `--set key=value` override; the value is parsed as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise UsageError(f"--set {text!r}: write overrides as KEY=VALUE, for example --set max_rounds=2")
    key, raw = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UsageError(
            f"--set {text}: the value is not valid YAML ({problem}). Write a number, true/false, a list "
            f"[a, b] or a mapping {{k: v}}, or quote it to pass it as text: --set '{key.strip()}=\"...\"'"
        ) from None


def build_config(
    data: dict[str, Any], source: str = "config", need_eval_tasks: bool = True, given: dict[str, str] | None = None
) -> Config:
    """Validate a mapping of keys into a Config, raising UsageError with one line per problem.

    `need_eval_tasks=False` accepts an empty `eval_tasks` (for checking data alone). `given`
    maps the dotted keys set on the command line to the option that set them
    (`max_rounds` -> `--set max_rounds=0`), which a message about such a key names instead of `source`.
    """
    try:
        config = Config.model_validate(data, context={"need_eval_tasks": need_eval_tasks})
    except ValidationError as err:
        raise UsageError(_explain(err, source, given or {})) from None
    _check_files(config, source, given or {})
    return config


def input_files(config: Config) -> dict[str, Path]:
    """The files a run of `config` reads, by the key that names each: `train_file`, `candidate_file`
    and, for each evaluation task given as a file, `eval_tasks[i]` (its JSONL file or its task file)."""
    files = {"train_file": config.train_file, "candidate_file": config.candidate_file}
    for i, task in enumerate(config.eval_tasks):
        files[f"eval_tasks[{i}]"] = task.path if task.path is not None else _task_file(task.task or "")
    for i, task in enumerate(config.rl.tasks if config.rl else []):
        files[f"rl.tasks[{i}]"] = task.path if task.path is not None else _task_file(task.task or "")
    return {key: file for key, file in files.items() if file is not None}


def _check_files(config: Config, source: str, given: dict[str, str]) -> None:
    """Fail before any work when a file the run needs is missing, naming where it was given:
    the option that set it (`given`, as for build_config), else `source`."""
    for key, file in input_files(config).items():
        if not file.is_file():
            what = f"{key} file" if key.startswith(("eval_tasks", "rl.tasks")) else key
            raise UsageError(f"{_option_for(key, given) or source}: {what} {file} does not exist.")


def _task_file(spec: str) -> Path | None:
    """The Python file an Inspect task spec names (`tasks.py@name` or `tasks.py`), or None for a registry name."""
    file, at, _ = spec.partition("@")
    return Path(file) if at or file.endswith(".py") else None


# Keys that only say where a new run goes; they may differ when a run is resumed.
_PLACEMENT_KEYS = {"output_dir", "run_name"}


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the keys whose values differ between two dumped configs."""
    changed = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in _PLACEMENT_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set dotted keys (`generation.max_tokens`) of `overrides` in a copy of `data`."""
    data = json.loads(json.dumps(data, default=str))
    for key, value in (overrides or {}).items():
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value
    return data


def load_config(
    path: Path | None, overrides: dict[str, Any] | None = None, need_eval_tasks: bool = True,
    given: dict[str, str] | None = None,
) -> Config:
    """Read a config file (or start empty), apply overrides, validate, and return the Config.

    With `need_eval_tasks=False` a missing or empty `eval_tasks` is accepted; `given`: see build_config.
    """
    data: dict[str, Any] = {}
    source = "command-line options"
    if path is not None:
        data = _read_file(path)
        _resolve_paths(data, absolute_path(path.parent))
        source = str(path)
    data = apply_overrides(data, overrides)
    if not need_eval_tasks:
        data.setdefault("eval_tasks", [])
    return build_config(data, source, need_eval_tasks, given)
