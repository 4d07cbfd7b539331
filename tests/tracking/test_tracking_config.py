"""Tracking configuration: secrets stay out of config keys, and every mistake is one message."""

from __future__ import annotations

import pytest

from inspect_tinker.cli import main
from inspect_tinker.config import load_config
from inspect_tinker.errors import UsageError
from inspect_tinker.tracking.events import EventLog
from inspect_tinker.tracking.run_folder import RunFolder
from inspect_tinker.tracking.secrets import Secrets
from inspect_tinker.tracking.webhooks import WebhookDestination

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


def test_a_webhook_url_in_the_config_is_refused_without_being_echoed(write_run_config, capsys):
    config = write_run_config(webhooks=[SLACK_URL])
    assert main(["run", str(config)]) == 2
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
    assert main(["run", str(config)]) == 2
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


def test_alerts_follow_the_scores_and_the_outcome_and_reach_the_chosen_webhooks(tmp_path):
    folder = RunFolder.create(tmp_path, "nightly")
    events = EventLog(folder)
    events.emit("run_started", run_dir=str(folder.root), config={})
    for round_no, score in enumerate([0.5, 0.3, 0.6, 0.6, 0.4]):
        events.emit("eval_result", round=round_no, score=score, tasks=[])
    events.emit("run_finished", run_dir=str(folder.root), bar_met=False, best_score=0.6, best_round=2, threshold=0.75,
                rounds_run=4, best_adapter="a")
    recorded = folder.read_events()
    alerts = [e for e in recorded if e["event"] == "alert"]
    assert [(a["alert"], a.get("round")) for a in alerts] == [("round_below_best", 1), ("round_below_best", 4), ("bar_not_met", None)]
    assert alerts[1]["message"] == "round 4 scored 0.400, below the best so far (0.600 in round 2)."

    hook = WebhookDestination("HOOK", "http://127.0.0.1:9/hook", ["bar_not_met", "run_finished"], 1)
    bodies = [found[1] for e in recorded if (found := hook.payload(e))]
    assert [b["alert"] for b in bodies] == ["run_finished", "bar_not_met"]
    assert bodies[1]["text"] == (
        "inspect-tinker run nightly: bar not met after the last round: best score 0.600 (bar 0.75) in round 2 after 4 round(s)."
    )
    assert bodies[1]["best_score"] == 0.6 and bodies[1]["run_dir"] == str(folder.root) and "seq" not in bodies[1]


@pytest.mark.parametrize(
    ("key", "url", "found", "fix"),
    [
        ("mlflow_tracking_uri", "https://mlflow.example/?token=PLANTED-77aa", "token", "MLFLOW_TRACKING_TOKEN"),
        ("mlflow_tracking_uri", "https://mlflow.example/api?X-Amz-Signature=PLANTED-77aa", "X-Amz-Signature",
         "MLFLOW_TRACKING_TOKEN"),
        ("tinker_base_url", "https://me:PLANTED-77aa@tinker.example", "password", "TINKER_API_KEY"),
        ("tinker_base_url", "https://tinker.example/?api_key=PLANTED-77aa", "api_key", "TINKER_API_KEY"),
    ],
)
def test_credentials_in_any_url_are_refused_naming_the_key_and_the_fix(write_run_config, key, url, found, fix):
    with pytest.raises(UsageError, match=fr"{key}: the URL holds a credential \({found}\)") as caught:
        load_config(write_run_config(**{key: url}))
    assert fix in str(caught.value) and "PLANTED" not in str(caught.value)


def test_a_url_without_credentials_keeps_its_harmless_query(write_run_config):
    uri = "https://mlflow.example/?workspace=team&sslmode=require"
    assert load_config(write_run_config(mlflow_tracking_uri=uri)).mlflow_tracking_uri == uri


def test_a_webhook_url_whose_scheme_is_upper_case_is_accepted_and_delivered(write_run_config, receiver, monkeypatch):
    from inspect_tinker.loop.settings import delivery_settings
    from inspect_tinker.tracking.sinks import delivery_for

    receiver.start()
    monkeypatch.setenv("TEAM_HOOK", f"HTTP://127.0.0.1:{receiver.port}/hooks/T0KEN")  # schemes are case-insensitive
    path = write_run_config(webhooks=["TEAM_HOOK"], webhook_events=["run_finished"], delivery_flush_seconds=60)
    folder = RunFolder.create(path.parent / "runs", "hook")
    events = EventLog(folder, [delivery_for(delivery_settings(load_config(path))).start(folder)])
    events.emit("run_started", run_dir=str(folder.root), config={})
    events.emit("run_finished", run_dir=str(folder.root), bar_met=True, best_score=1.0, best_round=1, threshold=0.5,
                rounds_run=1, best_adapter="a")
    events.close()
    assert [b["alert"] for b in receiver.bodies("/hooks/")] == ["run_finished"]
