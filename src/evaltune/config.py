"""The one configuration model of a run: every key, its default and its meaning.

A run is described by a file (JSON, YAML or TOML) plus command-line overrides, validated
once by `load_config`. Relative paths in a file are resolved against the file's folder.
The keys of the original tinker-eval-loop demo config are accepted unchanged.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaltune.errors import UsageError
from evaltune.models import BUNDLED_MODEL_NAME


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EvalTaskConfig(_Strict):
    """One evaluation task. A bare string in `eval_tasks` is shorthand for `{path: STRING}`."""

    path: Path = Field(description="JSONL file of {question, answer, aliases?} records for the built-in QA task.")
    name: str | None = Field(None, description="Name shown in output and logs; defaults to the file's stem.")
    type: Literal["qa"] = Field("qa", description="Task kind. `qa`: answer-included check, normalised.")

    @property
    def display_name(self) -> str:
        return self.name or self.path.stem


class GenerationConfig(_Strict):
    """How the model answers during evaluation. Pinned for the whole run so rounds compare."""

    max_tokens: int = Field(32, ge=1, le=4096, description="New tokens generated per answer.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    system_prompt: str | None = Field(None, description="System message put before every question; none by default.")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings, cut from the answer.")


class Config(_Strict):
    """Everything a run needs. Defaults are stated with each key."""

    # What to train.
    base_model: str = Field(
        BUNDLED_MODEL_NAME,
        description="Bundled model name, a local Hugging Face model folder, or a hub id already in the local cache.",
    )
    engine: Literal["local"] = Field("local", description="Training backend. `local`: PyTorch + PEFT on CPU or GPU.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` uses CUDA when present, else CPU.")
    train_file: Path = Field(description="Training data: JSONL of {instruction, input?, output} or {messages} records.")
    strict: bool = Field(False, description="Reject the run on any invalid training record instead of dropping it.")
    max_seq_length: int = Field(512, ge=16, description="Longer examples are cut to this many tokens.")
    renderer_name: str | None = Field(
        None,
        description="Accepted for tinker-eval-loop configs; the local engine always renders with the tokenizer's chat template.",
    )

    # How to evaluate.
    eval_tasks: list[EvalTaskConfig] = Field(min_length=1, description="Evaluation tasks; the run's score is their mean.")
    eval_threshold: float = Field(0.75, ge=0.0, le=1.0, description="The bar: a round whose score reaches it ends the run.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="Pinned evaluation decoding.")
    eval_batch_size: int = Field(16, ge=1, description="Questions generated together in one batch.")
    baseline_eval: bool = Field(True, description="Evaluate the untrained model first, as round 0.")

    # How to train.
    max_rounds: int = Field(3, ge=1, description="At most this many train-then-evaluate rounds.")
    steps_per_round: int = Field(5, ge=1, description="Optimizer steps in each round.")
    batch_size: int = Field(8, ge=1, description="Examples per optimizer step.")
    micro_batch_size: int | None = Field(
        None, ge=1, description="Examples per forward pass; smaller than batch_size means gradient accumulation."
    )
    learning_rate: float | Literal["auto"] = Field(
        2e-4,
        description="AdamW learning rate of round 1; `auto` picks the recommended LoRA rate for the model's family and width.",
    )
    lr_decay: float = Field(0.6, gt=0.0, le=1.0, description="The learning rate is multiplied by this after a round below the bar.")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="Shape of the rate over the run's max_rounds * steps_per_round steps, after warmup."
    )
    warmup_steps: int = Field(0, ge=0, description="Steps over which the rate rises linearly to its full value.")
    max_grad_norm: float = Field(1.0, ge=0.0, description="Clip the gradient's global norm to this before each step; 0 turns clipping off.")
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2.")
    adam_eps: float = Field(1e-8, gt=0.0, description="AdamW epsilon.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay on the LoRA weights.")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="Training precision: `bf16` autocast or `fp32`. `auto`: bf16 on GPU; on CPU the one measured faster (bench/README.md).",
    )
    packing: bool = Field(
        True,
        description="Pack a micro-batch's examples into rows as long as its longest example, attention staying within "
        "each example, so short examples share a row instead of being padded. Off: bucket by length and pad.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory for large models, about 30 % more compute."
    )
    lora_rank: int = Field(16, ge=1, description="LoRA rank r.")
    lora_alpha: float = Field(32.0, gt=0.0, description="LoRA scaling alpha (the update is scaled by alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get adapters: `all-linear` or a list of module names."
    )
    seed: int = Field(0, description="Seeds adapter init, data order and sampling; a CPU run is deterministic.")

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
    run_name: str | None = Field(None, description="Run folder name; defaults to a timestamp.")

    # EvalOps (keys of the original demo).
    evalops_enabled: bool = Field(False, description="Submit each round to EvalOps as a test run.")
    evalops_test_suite_id: str | None = Field(None, description="EvalOps test suite that receives the rounds.")

    @field_validator("eval_tasks", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, dict)):
            value = [value]
        if isinstance(value, list):
            return [{"path": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("learning_rate", mode="before")
    @classmethod
    def _rate_or_auto(cls, value: Any) -> Any:
        # One message for both shapes, instead of one per member of the union.
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(f"Input should be greater than 0 and at most 1, or 'auto' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _check_unsupported(self) -> "Config":
        if self.evalops_enabled:
            raise ValueError(
                "evalops_enabled: EvalOps submission is not available in this version yet; set it to false"
            )
        return self


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist.")
    text = path.read_text(encoding="utf-8")
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
        return str(base / p) if isinstance(p, str) and not Path(p).is_absolute() else p

    for key in ("train_file", "output_dir"):
        if key in data:
            data[key] = fix(data[key])
    tasks = data.get("eval_tasks")
    if isinstance(tasks, (str, dict)):
        tasks = [tasks]
    if isinstance(tasks, list):
        data["eval_tasks"] = [
            fix(t) if isinstance(t, str) else ({**t, "path": fix(t["path"])} if isinstance(t, dict) and "path" in t else t)
            for t in tasks
        ]
    base_model = data.get("base_model")
    if isinstance(base_model, str) and base_model.startswith((".", "~")):
        data["base_model"] = fix(base_model)


def _valid_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _explain(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            owner: type[BaseModel] = Config
            if len(e["loc"]) > 1 and e["loc"][0] == "generation":
                owner = GenerationConfig
            elif len(e["loc"]) > 1 and e["loc"][0] == "eval_tasks":
                owner = EvalTaskConfig
            key = str(e["loc"][-1])
            near = difflib.get_close_matches(key, _valid_keys(owner), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(_valid_keys(owner))}"
            lines.append(f"unknown key {loc!r}{hint}")
        elif e["type"] == "missing":
            lines.append(f"missing required key {loc!r}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = "" if e["type"] == "value_error" else f" (got {e.get('input')!r})"
            lines.append(f"{loc or 'config'}: {msg}{shown}")
    return f"invalid configuration in {source}:\n  " + "\n  ".join(lines)


def parse_override(text: str) -> tuple[str, Any]:
    """Split a `--set key=value` override; the value is parsed as YAML (numbers, booleans, lists)."""
    if "=" not in text:
        raise UsageError(f"--set {text!r}: write overrides as KEY=VALUE, for example --set max_rounds=2")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def build_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a mapping of keys into a Config, raising UsageError with one line per problem."""
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise UsageError(_explain(err, source)) from None
    check_files(config, source)
    return config


def check_files(config: Config, source: str) -> None:
    """Fail before any work when a file the run needs is missing."""
    if not config.train_file.is_file():
        raise UsageError(f"{source}: train_file {config.train_file} does not exist.")
    for i, task in enumerate(config.eval_tasks):
        if not task.path.is_file():
            raise UsageError(f"{source}: eval_tasks[{i}] file {task.path} does not exist.")


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


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read a config file (or start empty), apply overrides, validate, and return the Config."""
    data: dict[str, Any] = {}
    source = "command-line options"
    if path is not None:
        data = _read_file(path)
        _resolve_paths(data, path.parent)
        source = str(path)
    return build_config(apply_overrides(data, overrides), source)
