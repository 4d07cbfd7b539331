"""The tracking hooks' settings: environment variables, since `inspect eval` has no config file of ours.

Every variable, in one place (docs/tracking.md, "Hooks for any `inspect eval`", points here):

    EVALOPS_API_KEY                 secret; with EVALOPS_TEST_SUITE_ID it turns the `inspect_tinker/evalops` hook on
    EVALOPS_TEST_SUITE_ID           the EvalOps test suite that receives a test run per task (config: evalops_test_suite_id)
    EVALOPS_API_URL                 the EvalOps API (default https://api.evalops.dev)
    MLFLOW_TRACKING_URI             turns the `inspect_tinker/mlflow` hook on: an MLflow server, database or local folder
    MLFLOW_EXPERIMENT_NAME          the MLflow experiment (default: the config key mlflow_experiment's default)
    INSPECT_TINKER_WEBHOOKS         comma-separated names of environment variables holding webhook URLs; turns
                                    the `inspect_tinker/alerts` hook on (the config key `webhooks`, as a list)
    INSPECT_TINKER_ALERT_THRESHOLD  the bar of a task that is not part of a loop (a loop task carries its run's
                                    bar); unset: plain tasks raise only crash alerts
    INSPECT_TINKER_DELIVERY_TIMEOUT_SECONDS, INSPECT_TINKER_DELIVERY_MAX_BACKOFF_SECONDS,
    INSPECT_TINKER_DELIVERY_FLUSH_SECONDS    as the config keys delivery_timeout_seconds, ... (same defaults)

None of them is recorded (a URL may carry a credential): the hook and `inspect-tinker sync`
each read them from the environment, so sync a log dir in the environment its eval ran in.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, ValidationError

from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.evalops import DEFAULT_API_URL
from inspect_tinker.tracking.settings import DeliverySettings


def _run_field(key: str):
    # The run configuration's key of the same name: its default, bounds and description, stated once.
    return DeliverySettings.model_fields[key]


class HookSettings(BaseModel):
    """What the hooks deliver where; each field is read from the environment variable `ENVIRONMENT` names."""

    evalops_api_url: str = DEFAULT_API_URL
    evalops_test_suite_id: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = _run_field("mlflow_experiment")
    webhooks: list[str] = Field(default_factory=list)
    alert_threshold: float | None = Field(None, ge=0.0, le=1.0)
    delivery_timeout_seconds: float = _run_field("delivery_timeout_seconds")
    delivery_max_backoff_seconds: float = _run_field("delivery_max_backoff_seconds")
    delivery_flush_seconds: float = _run_field("delivery_flush_seconds")


ENVIRONMENT = {
    "EVALOPS_API_URL": "evalops_api_url",
    "EVALOPS_TEST_SUITE_ID": "evalops_test_suite_id",
    "MLFLOW_TRACKING_URI": "mlflow_tracking_uri",
    "MLFLOW_EXPERIMENT_NAME": "mlflow_experiment",
    "INSPECT_TINKER_WEBHOOKS": "webhooks",
    "INSPECT_TINKER_ALERT_THRESHOLD": "alert_threshold",
    "INSPECT_TINKER_DELIVERY_TIMEOUT_SECONDS": "delivery_timeout_seconds",
    "INSPECT_TINKER_DELIVERY_MAX_BACKOFF_SECONDS": "delivery_max_backoff_seconds",
    "INSPECT_TINKER_DELIVERY_FLUSH_SECONDS": "delivery_flush_seconds",
}


def settings_from_environment() -> HookSettings:
    """The hooks' settings from the environment; UsageError naming the variable and its fix."""
    values: dict = {}
    for variable, field in ENVIRONMENT.items():
        if value := os.environ.get(variable, "").strip():
            values[field] = [name.strip() for name in value.split(",") if name.strip()] if field == "webhooks" else value
    try:
        return HookSettings.model_validate(values)
    except ValidationError as err:
        problem = err.errors()[0]
        variable = next(v for v, f in ENVIRONMENT.items() if f == problem["loc"][0])
        raise UsageError(
            f"the environment variable {variable}={os.environ[variable]!r} is not valid ({problem['msg']}); "
            f"fix or unset it (see docs/tracking.md)."
        ) from None
