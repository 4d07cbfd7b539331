"""Pruning a run's checkpoints on a real Tinker-compatible server: listed, then deleted, through
the SDK's RestClient, which this server answers (list_checkpoints, delete)."""

from __future__ import annotations

import json

import pytest
import tinker

from inspect_tinker.cli import main
from inspect_tinker.policies import best_round
from inspect_tinker.provider.tinker_checkpoints import training_run_of
from inspect_tinker.tracking import RunFolder

pytestmark = pytest.mark.tinker_server


def on_the_server(server, run_dir) -> dict[str, str]:
    """tinker:// path -> checkpoint type, of every checkpoint the server holds in the run's training runs."""
    history = json.loads((run_dir / "state.json").read_text())["history"]
    runs = {training_run_of(r["adapter"]) for r in history if r["adapter"]}
    rest = tinker.RestClient(base_url=server.base_url)
    return {c.tinker_path: c.checkpoint_type for run in runs for c in rest.list_checkpoints(run).result().checkpoints}


def run_folder(tmp_path, server, run_config_writer, **keys):
    config = run_config_writer(tmp_path, backend="tinker", base_model="tiny-llama", tinker_base_url=server.base_url,
                               **{"eval_threshold": 1.0, "steps_per_round": 1, **keys})
    assert main(["run", "--config", str(config)]) == 1  # the tiny model never reaches the bar: every round runs
    return tmp_path / "runs" / "test"


def best_and_last(run_dir) -> set[str]:
    """The training states pruning keeps: the best trained round's and the last round's."""
    trained = [r for r in RunFolder.open(run_dir).read_state().history if r.round > 0]
    return {best_round(trained).adapter, trained[-1].adapter}


def test_prune_lists_without_deleting_then_deletes_all_but_the_best_and_last_rounds_checkpoints(
    tiny_tinker_server, tmp_path, run_config_writer, capsys
):
    run_dir = run_folder(tmp_path, tiny_tinker_server, run_config_writer, max_rounds=3)
    summary = json.loads((run_dir / "summary.json").read_text())
    adapters = {r["round"]: r["adapter"] for r in summary["rounds"] if r["round"] > 0}
    kept = best_and_last(run_dir)
    before = on_the_server(tiny_tinker_server, run_dir)
    # Each round saved its state and the sampler weights its evaluation sampled from; the
    # baseline sampled from weights saved from the fresh adapter, before any state.
    assert sorted(p for p, kind in before.items() if kind == "training") == sorted(adapters.values())
    assert sum(kind == "sampler" for kind in before.values()) == 1 + 3
    capsys.readouterr()

    assert main(["prune", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert on_the_server(tiny_tinker_server, run_dir) == before  # a dry run
    deleted = set(adapters.values()) - kept
    assert all(f"delete {path}" in out for path in deleted) and all(f"keep   {path}" in out for path in kept), out
    assert "Nothing deleted (a dry run)" in out

    assert main(["prune", str(run_dir), "--delete"]) == 0
    after = on_the_server(tiny_tinker_server, run_dir)
    assert {p for p, kind in after.items() if kind == "training"} == kept
    assert sum(kind == "sampler" for kind in after.values()) == len(kept)  # the sampler weights of the kept rounds
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    [pruned] = [e for e in events if e["event"] == "checkpoints_pruned"]
    assert set(pruned["deleted"]) == set(before) - set(after) and set(pruned["kept"]) == set(after)

    assert main(["prune", str(run_dir), "--delete"]) == 0  # again: nothing left to delete, no error
    assert on_the_server(tiny_tinker_server, run_dir) == after


def test_prune_checkpoints_prunes_when_the_run_ends(tiny_tinker_server, tmp_path, run_config_writer):
    # A partial state mid-way through each round (after steps 1 and 3): never one to keep.
    run_dir = run_folder(tmp_path, tiny_tinker_server, run_config_writer, max_rounds=2, steps_per_round=2,
                         save_every_steps=1, prune_checkpoints=True)
    after = on_the_server(tiny_tinker_server, run_dir)
    assert {p for p, kind in after.items() if kind == "training"} == best_and_last(run_dir)
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names.index("checkpoints_pruned") > names.index("run_finished")
    [pruned] = [e for e in events if e["event"] == "checkpoints_pruned"]
    assert {p.rsplit("/", 1)[1] for p in pruned["deleted"] if "/weights/" in p} >= {"step-1", "step-3"}
    assert not set(pruned["deleted"]) & set(after)
