"""The remote sinks a run's delivery settings turn on (MLflow, EvalOps, webhooks), those of the tracking
hooks (tracking/hooks.py), and `inspect-tinker sync`."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from inspect_tinker.errors import UsageError, require_extra
from inspect_tinker.tracking.crashes import record_crash
from inspect_tinker.tracking.delivery import Delivery, Destination
from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.evalops import DEFAULT_API_URL, EvalOpsDestination
from inspect_tinker.tracking.hook_settings import HookSettings, settings_from_environment
from inspect_tinker.tracking.mlflow import MLflowDestination
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.secrets import Secrets
from inspect_tinker.tracking.settings import DeliverySettings
from inspect_tinker.tracking.webhooks import WebhookDestination

# The key of a tracking hook's folder's config.json that names its hook (a run's config has no such key).
HOOK_KEY = "inspect_tinker_hook"
# What the alerts hook sends to its webhooks: every alert a finished task or a crashed run raises.
HOOK_ALERTS = ["task_below_bar", "regression_guard_fell", "run_crashed"]


def delivery_for(settings: DeliverySettings) -> Delivery:
    """The Delivery sink for the remote sinks `settings` turn on (none: a sink that does nothing).

    Secrets are looked up here, so a missing one is a UsageError before any work starts.
    """
    secrets = Secrets(settings.secrets_file)
    timeout = settings.delivery_timeout_seconds
    destinations: list[Destination] = []
    if settings.mlflow_tracking_uri:
        require_extra("mlflow", ("mlflow",), "mlflow_tracking_uri")
        destinations.append(MLflowDestination(settings.mlflow_tracking_uri, settings.mlflow_experiment, timeout))
    if settings.evalops_enabled:
        api_key = secrets.require("EVALOPS_API_KEY", "evalops_enabled")
        api_url = secrets.get("EVALOPS_API_URL", redact=False) or DEFAULT_API_URL
        destinations.append(EvalOpsDestination(api_url, api_key, settings.evalops_test_suite_id, timeout))
    for name in settings.webhooks:
        destinations.append(_webhook(secrets, name, f"webhooks ({name})", settings.webhook_events, timeout))
    return Delivery(
        destinations, max_backoff_seconds=settings.delivery_max_backoff_seconds,
        flush_seconds=settings.delivery_flush_seconds, redact=secrets.redact,
    )


def _webhook(secrets: Secrets, name: str, needed_for: str, chosen: list[str], timeout: float) -> WebhookDestination:
    url = secrets.require(name, needed_for)
    parts = urlsplit(url)  # the scheme lower-cased: schemes are case-insensitive (RFC 3986)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise UsageError(f"{needed_for}: the secret {name} must hold an http:// or https:// URL.")
    return WebhookDestination(name, url, chosen, timeout)


def hook_delivery(hook: str, settings: HookSettings) -> Delivery:
    """The Delivery of tracking hook `hook` ("evalops", "mlflow" or "alerts", tracking/hooks.py),
    to the destination `settings` (read from the environment) give it; secrets from the environment."""
    variable, value = {
        "evalops": ("EVALOPS_TEST_SUITE_ID", settings.evalops_test_suite_id),
        "mlflow": ("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
        "alerts": ("INSPECT_TINKER_WEBHOOKS", settings.webhooks),
    }[hook]
    if not value:  # the hooks are on only when it is set: this is `sync` in another environment
        raise UsageError(
            f"the inspect_tinker/{hook} hook's outbox needs {variable}: export it as it was for the eval, then sync again."
        )
    secrets = Secrets()
    timeout = settings.delivery_timeout_seconds
    destinations: list[Destination] = []
    if hook == "evalops":
        api_key = secrets.require("EVALOPS_API_KEY", "the inspect_tinker/evalops hook")
        destinations.append(EvalOpsDestination(settings.evalops_api_url, api_key, settings.evalops_test_suite_id, timeout))
    elif hook == "mlflow":
        require_extra("mlflow", ("mlflow",), "MLFLOW_TRACKING_URI")
        destinations.append(MLflowDestination(settings.mlflow_tracking_uri, settings.mlflow_experiment, timeout))
    else:
        for name in settings.webhooks:
            destinations.append(_webhook(secrets, name, f"INSPECT_TINKER_WEBHOOKS ({name})", HOOK_ALERTS, timeout))
    return Delivery(
        destinations, max_backoff_seconds=settings.delivery_max_backoff_seconds,
        flush_seconds=settings.delivery_flush_seconds, redact=secrets.redact,
    )


def sync_outbox(run_dir: Path) -> dict | None:
    """Deliver what the run in `run_dir` left in its outbox, waiting at most the run's
    `delivery_flush_seconds`; return the delivery report (None when the run has no remote sinks).

    `run_dir` may also be a tracking hook's folder (see `hook_folders`), delivered to the
    destinations the environment names now.

    A run whose process died without a word is recorded as crashed first (tracking/crashes.py),
    and that alert delivered with the rest. Refused (UsageError) while a live process works
    on the run: it delivers its own outbox.
    """
    folder = RunFolder.open(run_dir)
    recorded = folder.read_config()
    if HOOK_KEY in recorded:
        return _deliver(folder, hook_delivery(recorded[HOOK_KEY], settings_from_environment()))[1]
    return _deliver(folder, delivery_for(_recorded_settings(folder)))[1]


def hook_folders(log_dir: Path) -> list[Path]:
    """The tracking hooks' folders in the Inspect log dir `log_dir`: `<log_dir>/inspect-tinker/<run id>/<hook>/`,
    one per hook and `inspect eval` run, each holding config.json, events.jsonl and outbox.jsonl."""
    return sorted(path.parent for path in Path(log_dir).glob("inspect-tinker/*/*/config.json"))


def notice_crash(run_dir: Path) -> dict | None:
    """For `inspect-tinker runs`: when the run's process died holding its lock, record the crash
    and deliver it like `sync`; return the `crash_detected` event, else None (also when the
    run is going on, or stopped cleanly).

    When the run's sinks cannot be built here (a secret missing from this environment) the
    crash is recorded all the same, and `inspect-tinker sync` delivers it later.
    """
    folder = RunFolder.open(run_dir)
    if not folder.lock_path.exists() or folder.running_pid() is not None:
        return None
    try:
        delivery = delivery_for(_recorded_settings(folder))
    except UsageError:
        delivery = Delivery([], max_backoff_seconds=1.0, flush_seconds=0.0)
    try:
        return _deliver(folder, delivery)[0]
    except UsageError:  # a resume took the run in the meantime; it records the crash itself
        return None


def _recorded_settings(folder: RunFolder) -> DeliverySettings:
    """The delivery settings of the configuration the run in `folder` recorded."""
    try:
        return DeliverySettings.model_validate(folder.read_config())
    except (json.JSONDecodeError, ValidationError) as err:
        raise UsageError(f"{folder.root / 'config.json'} is not a configuration this version reads: {err}") from None


def _deliver(folder: RunFolder, delivery: Delivery) -> tuple[dict | None, dict | None]:
    """Take the run's lock, record a silent death, deliver the outbox and release the lock;
    return (the `crash_detected` event or None, the delivery report)."""
    dead_pid = folder.acquire()
    try:
        delivery.start(folder)
        crash = None if dead_pid is None else record_crash(folder, EventLog(folder, [delivery]), dead_pid)
        return crash, delivery.close()
    finally:
        folder.release()
