"""`inspect-tinker tune`: search the starting learning rate, LoRA rank and steps per round with Optuna.

Each trial is a short run of the loop (`tune.max_rounds` rounds) with sampled values; its
objective is the run's best score. TPE samples the values; trials whose score after a round
falls below the median of earlier trials at that round are pruned (stopped early). The study
lives in an Optuna storage: by default a SQLite file in the tune folder, so running the same
command again resumes the search; several workers, on one machine or many, share one study
through a database URL (`tune.storage`: a URL without credentials, or the name of a secret
holding the URL with its password).

The tune folder:
    <output_dir>/<run_name or tune-CONFIGNAME>/
        study.db              the Optuna study (without `tune.storage`)
        trials/trial-<n>/     each trial's run folder
        best_config.yaml      the config with the best trial's settings
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
import yaml

from inspect_tinker.config import SECRET_NAME, Config, apply_overrides, build_config
from inspect_tinker.errors import UsageError
from inspect_tinker.loop.session import run
from inspect_tinker.loop.settings import backend_settings
from inspect_tinker.provider import check_backend_requirements
from inspect_tinker.tracking.run_folder import make_folder
from inspect_tinker.tracking.secrets import Secrets

TUNED_KEYS = ("learning_rate", "lora_rank", "steps_per_round")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
HEARTBEAT_SECONDS = 60
SCHEMA_ATTEMPTS = 3


@dataclass
class TuneOutcome:
    """The best trial of the study (None when no trial completed) and where its config went."""

    best_params: dict | None
    best_score: float | None
    best_trial: int | None
    bar_met: bool
    best_config: Path | None
    finished_trials: int


def tune_folder(config: Config, config_path: Path) -> Path:
    """Where a search of `config` (read from `config_path`) keeps its study and trials."""
    return Path(config.output_dir) / (config.run_name or f"tune-{config_path.stem}")


def storage_label(config: Config, folder: Path) -> str:
    """Where the study lives, as it may be printed: never the URL a secret holds."""
    storage = config.tune.storage
    if storage is None:
        return str(folder / "study.db")
    return f"the storage in secret {storage}" if SECRET_NAME.fullmatch(storage) else storage


def open_study(config: Config, folder: Path) -> optuna.Study:
    """Create the study, or load it when it exists (a resumed search, or another worker's).

    `tune.storage` naming a secret: the URL, password included, comes from the environment or
    the secrets file, and no message shows it.
    """
    make_folder(folder)
    secrets = Secrets(config.secrets_file)
    url = config.tune.storage or f"sqlite:///{(folder / 'study.db').resolve()}"
    if SECRET_NAME.fullmatch(url):
        url = secrets.require(url, "tune.storage")
    # SQLite serialises writers with a file lock: wait for it instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                # A worker killed mid-trial stops beating; its trial is then marked failed and retried once.
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=2 * HEARTBEAT_SECONDS,
                failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
            )
            break
        except sqlalchemy.exc.DBAPIError as err:
            # Workers started together race to create the empty database's tables; the loser
            # finds them made by the winner when it tries again.
            if attempt == SCHEMA_ATTEMPTS - 1:
                raise UsageError(
                    f"tune.storage: cannot open the study in {storage_label(config, folder)}: "
                    f"{secrets.redact(str(err.orig))}".rstrip() + " Check the URL, the server and the credentials."
                ) from None
            time.sleep(1 + attempt)
    study = optuna.create_study(
        study_name=config.tune.study_name or folder.name, storage=storage, direction="maximize", load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=config.tune.prune_after_trials),
    )
    # Each worker seeds its sampler with the number of trials it finds, so workers started
    # apart draw different values while a lone search from scratch is repeatable.
    study.sampler = optuna.samplers.TPESampler(
        n_startup_trials=config.tune.random_trials, seed=config.seed + len(study.trials)
    )
    return study


def tune(
    config: Config, folder: Path, trials: int, say: Callable[[str], None] = print
) -> TuneOutcome:
    """Run trials until the study holds `trials` finished (completed or pruned) ones.

    Trials already in the study count, so running again resumes the search; several workers
    on one study share the count. `say` receives one line per event worth showing.
    """
    check_backend_requirements(backend_settings(config))  # before the study's folder exists
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(config, folder)
    done = _finished(study)
    say(f"Study {study.study_name!r} in {storage_label(config, folder)}: {done} of {trials} trials finished")

    def objective(trial: optuna.Trial) -> float:
        values = {
            "learning_rate": trial.suggest_float("learning_rate", *config.tune.learning_rate, log=True),
            "lora_rank": trial.suggest_categorical("lora_rank", config.tune.lora_rank),
            "steps_per_round": trial.suggest_int("steps_per_round", *config.tune.steps_per_round),
        }
        say(f"trial {trial.number}: {_describe(values)}")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial_config = build_config(
            apply_overrides(
                config.model_dump(mode="json"),
                {**values, "max_rounds": config.tune.max_rounds, "output_dir": str(folder / "trials"),
                 "run_name": f"trial-{trial.number}"},
            ),
            f"trial {trial.number}",
        )
        summary = run(trial_config, sinks=[_TrialSink(trial, say)])
        trial.set_user_attr("run_dir", summary["run_dir"])
        trial.set_user_attr("bar_met", summary["bar_met"])
        # The objective is the best trained round's score: the baseline is the same in every trial
        # and would hide how the settings differ (it counts only when it met the bar, untrained).
        score = max((r["score"] for r in summary["rounds"] if r["round"] > 0), default=summary["best_score"])
        say(f"trial {trial.number}: best score {score:.3f}" + (", bar met" if summary["bar_met"] else ""))
        return score

    if done < trials:
        study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(trials, states=FINISHED)])
    return _outcome(config, study, folder)


class _TrialSink:
    """Reports each round's score to Optuna and stops a trial the pruner gives up on."""

    def __init__(self, trial: optuna.Trial, say: Callable[[str], None]):
        self.trial, self.say = trial, say

    def handle(self, event: dict) -> None:
        if event["event"] != "decision":
            return
        self.trial.report(event["score"], event["round"])
        if not event["stop"] and self.trial.should_prune():
            self.say(f"trial {self.trial.number}: pruned after round {event['round']} "
                     f"(score {event['score']:.3f}, below the median of earlier trials)")
            raise optuna.TrialPruned(f"score {event['score']:.3f} after round {event['round']}")


def _outcome(config: Config, study: optuna.Study, folder: Path) -> TuneOutcome:
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        return TuneOutcome(None, None, None, False, None, _finished(study))
    best = study.best_trial
    data = config.model_dump(mode="json", exclude={"run_name", "tune"})
    best_config = folder / "best_config.yaml"
    best_config.write_text(
        f"# The best settings of {len(completed)} completed trials of study {study.study_name!r}: "
        f"trial {best.number}, best score {best.value:.3f}.\n"
        + yaml.safe_dump({**data, **best.params}, sort_keys=False)
    )
    return TuneOutcome(
        best.params, best.value, best.number, bool(best.user_attrs.get("bar_met")), best_config, _finished(study)
    )


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _describe(values: dict) -> str:
    return (f"learning rate {values['learning_rate']:.2e}, LoRA rank {values['lora_rank']}, "
            f"{values['steps_per_round']} steps per round")
