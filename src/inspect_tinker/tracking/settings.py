"""Where a run's events go besides its run folder: the tracking keys of the run configuration.

Defined here, beside the sinks that read them (sinks.py), so that tracking never imports the
run's configuration module: `config.Config` takes these fields (default, bounds and
description) as its own top-level keys, and the tracking hooks' environment variables
(hook_settings.py) take their defaults from the same fields. Each is stated once, here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

WebhookEvent = Literal["bar_not_met", "round_below_best", "run_crashed", "run_finished"]


class DeliverySettings(BaseModel):
    """The remote sinks of a run (MLflow, EvalOps, webhooks) and how deliveries to them are retried.

    Built from the run's configuration where the run is set up (loop/settings.py), or from the
    config.json a run folder recorded (`inspect-tinker sync`): the keys not listed here are ignored.
    The configuration checks what a person wrote (secret names, URLs without credentials); this
    model checks only the types.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Secrets (API keys, webhook URLs) are never keys: they come from the environment or
    # `secrets_file`, so config.json never holds one.
    secrets_file: Path | None = Field(
        None,
        description="TOML file of secrets (`EVALOPS_API_KEY = \"...\"`, webhook URLs); the environment wins over it.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking server URI (http://host:5000, sqlite:///file.db, databricks) or a local folder; none: no MLflow.",
    )
    mlflow_experiment: str = Field("inspect-tinker", min_length=1, description="MLflow experiment that receives the runs.")
    evalops_enabled: bool = Field(
        False, description="Submit each round to EvalOps as a test run (key: EVALOPS_API_KEY, URL: EVALOPS_API_URL)."
    )
    evalops_test_suite_id: str | None = Field(None, description="EvalOps test suite that receives the rounds.")
    webhooks: list[str] = Field(
        default_factory=list,
        description="Names of secrets (environment variables or secrets-file keys) that hold webhook URLs.",
    )
    webhook_events: list[WebhookEvent] = Field(
        default_factory=lambda: ["bar_not_met", "round_below_best", "run_crashed"],
        description="What a webhook is told about: bar_not_met, round_below_best, run_crashed, run_finished.",
    )
    delivery_timeout_seconds: float = Field(10.0, gt=0.0, description="One request to a sink gives up after this long.")
    delivery_max_backoff_seconds: float = Field(
        30.0, gt=0.0, description="Failed deliveries are retried with exponential backoff and jitter, waiting at most this long."
    )
    delivery_flush_seconds: float = Field(
        30.0, ge=0.0, description="At the end of a run, wait at most this long for deliveries; the rest stays in outbox.jsonl."
    )
