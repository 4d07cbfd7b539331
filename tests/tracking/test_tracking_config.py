"""Tracking configuration: secrets stay out of config keys, and every mistake is one message."""

from __future__ import annotations

import pytest

from evaltune.cli import main
from evaltune.config import load_config
from evaltune.errors import UsageError
from evaltune.tracking.secrets import Secrets
from evaltune.tracking.webhooks import WebhookDestination

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def test_a_webhook_url_in_the_config_is_refused_without_being_echoed(write_run_config, capsys):
    config = write_run_config(webhooks=[SLACK_URL])
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "webhooks[0] must name an environment variable or secrets-file key" in err
    assert "XXXXSECRET" not in err and not (config.parent / "runs").exists()


def test_credentials_in_the_mlflow_uri_are_refused_without_being_echoed(write_run_config):
    with pytest.raises(UsageError, match="MLFLOW_TRACKING_USERNAME") as caught:
        load_config(write_run_config(mlflow_tracking_uri="https://me:hunter2@mlflow.example"))
    assert "hunter2" not in str(caught.value)


def test_evalops_needs_a_test_suite(write_run_config):
    with pytest.raises(UsageError, match="evalops_enabled needs evalops_test_suite_id"):
        load_config(write_run_config(evalops_enabled=True))


def test_a_local_mlflow_folder_and_the_secrets_file_are_relative_to_the_config_file(write_run_config):
    path = write_run_config(mlflow_tracking_uri="mlruns", secrets_file="secrets.toml")
    config = load_config(path)
    assert config.mlflow_tracking_uri == str(path.parent / "mlruns") and config.secrets_file == path.parent / "secrets.toml"
    assert load_config(write_run_config(mlflow_tracking_uri="http://127.0.0.1:5000")).mlflow_tracking_uri == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "secrets.toml does not exist"),
        ("EVALOPS_API_KEY = sk-unquoted\n", "secrets.toml is not valid TOML"),
        ("EVALOPS_API_KEY = 42\n", "secrets.toml: EVALOPS_API_KEY must be a string"),
    ],
)
def test_a_bad_secrets_file_stops_the_run_with_one_message(write_run_config, capsys, content, message):
    config = write_run_config(secrets_file="secrets.toml", evalops_enabled=True, evalops_test_suite_id="s")
    if content is not None:
        (config.parent / "secrets.toml").write_text(content)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and "sk-unquoted" not in err and "Traceback" not in err


def test_the_environment_wins_over_the_secrets_file_and_values_are_redacted(tmp_path, monkeypatch):
    path = tmp_path / "secrets.toml"
    path.write_text('A = "from-file"\nB = "b-from-file"\n')
    monkeypatch.setenv("A", "from-env")
    secrets = Secrets(path)
    assert secrets.get("A") == "from-env" and secrets.get("B") == "b-from-file" and secrets.get("C") is None
    assert secrets.redact("failed: from-env, b-from-file") == "failed: ***, ***"
    with pytest.raises(UsageError, match=r"needs the secret C: export C=\.\.\. in the environment, or add C = "):
        secrets.require("C", "webhooks (C)")


def test_the_webhook_alerts_follow_the_scores_and_the_outcome():
    hook = WebhookDestination("HOOK", "http://127.0.0.1:9/hook", ["round_below_best", "bar_not_met"], 1)
    seq = iter(range(1, 100))

    def event(kind, **fields):
        n = next(seq)
        return {"event": kind, "seq": n, "id": f"r:{n}", "run_id": "r", "time": "2026-01-01T00:00:00+00:00", **fields}

    alerts = []
    for e in [
        event("run_started", run_dir="/runs/nightly", config={}),
        *(event("eval_result", round=r, score=s, tasks=[]) for r, s in enumerate([0.5, 0.3, 0.6, 0.6, 0.4])),
        event("run_finished", run_dir="/runs/nightly", bar_met=False, best_score=0.6, best_round=2, threshold=0.75,
              rounds_run=4, best_adapter="/runs/nightly/rounds/2/adapter"),
    ]:
        alerts += [payload for _, payload in hook.payloads(e)]
    assert [(a["alert"], a.get("round")) for a in alerts] == [("round_below_best", 1), ("round_below_best", 4), ("bar_not_met", None)]
    assert alerts[1]["text"] == "evaltune run nightly: round 4 scored 0.400, below the best so far (0.600 in round 2)."
    assert alerts[2]["best_score"] == 0.6 and alerts[2]["run_dir"] == "/runs/nightly"
