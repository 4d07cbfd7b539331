"""The HTML report of a real run (tiny model), opened in headless Chromium."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import pytest

from inspect_tinker.cli import main
from inspect_tinker.report.html import write_report
from inspect_tinker.report.plots import LOSS_COLOR, SCORE_COLOR


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, run_config_writer):
    """A real run to its end: baseline and two trained rounds; returns (run folder, console output)."""
    folder = tmp_path_factory.mktemp("report")
    config = run_config_writer(folder, eval_threshold=1.0)  # not met: both rounds run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(config)]) == 1
    return folder / "runs" / "test", out.getvalue()


def events_of(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def near(image, color: str, tolerance: int = 40) -> int:
    """How many pixels of `image` are within `tolerance` of the hex `color` on every channel."""
    target = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    return sum(1 for p in image.getdata() if all(abs(a - b) <= tolerance for a, b in zip(p, target)))


def test_a_run_writes_its_report_and_plots_when_it_ends_and_prints_the_path(finished_run):
    run_dir, output = finished_run
    report = run_dir / "report.html"
    assert report.is_file() and (run_dir / "plots" / "scores.png").is_file() and (run_dir / "plots" / "training.png").is_file()
    kinds = [e["event"] for e in events_of(run_dir)]
    assert kinds[-1] == "report_written" and "run_finished" in kinds  # the report is the last thing a run does
    assert f"Report: {report}" in output
    assert "Bar not met" in output  # the summary before it is unchanged


def test_the_report_is_self_contained_and_opens_in_chromium_without_console_errors(finished_run, open_report):
    run_dir, _ = finished_run
    html = (run_dir / "report.html").read_text()
    assert re.findall(r'(?:src|href)="(?!data:|#)[^"]*"', html) == []  # nothing to fetch
    page = open_report(run_dir / "report.html")
    assert page.console_errors == []
    fetched = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert [u for u in fetched if not u.startswith("data:")] == []
    assert page.text("#status") == "finished"


def test_the_charts_are_drawn_in_the_page(finished_run, open_report, tmp_path):
    run_dir, _ = finished_run
    page = open_report(run_dir / "report.html")
    whole = page.screenshot(tmp_path / "report.png")
    assert len(set(whole.getdata())) > 50  # not a blank page
    for css, color in (("#chart-scores", SCORE_COLOR), ("#chart-training", LOSS_COLOR)):
        assert page.js(f"return document.querySelector({css!r}).naturalWidth") > 300, css  # decoded
        chart = page.image_of(css)
        assert chart.width > 300 and chart.height > 100, css
        ink = sum(1 for p in chart.getdata() if min(p) < 200)
        assert ink > 0.02 * chart.width * chart.height, css  # axes, lines and labels, not an empty box
        assert near(chart, color) > 100, css  # the score line / the loss curve itself


def test_the_numbers_in_the_page_match_summary_json(finished_run, open_report):
    run_dir, _ = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    page = open_report(run_dir / "report.html")
    assert page.text("#outcome").startswith("Bar met" if summary["bar_met"] else "Bar not met")
    assert page.text("#best-score") == f"{summary['best_score']:.3f}"
    assert page.text("#baseline-score") == f"{summary['baseline_score']:.3f}"
    assert page.text("#best-round") == str(summary["best_round"])
    assert page.text("#rounds-run") == str(summary["rounds_run"])
    assert float(page.text("#threshold")) == summary["threshold"]
    # Round 0 (the base model) is the best round when no trained round beats it; it has no adapter.
    assert page.text("#best-adapter") == (summary["best_adapter"] or "the base model itself, without an adapter")
    rows = {int(tr.get_attribute("data-round")): tr for tr in page.elements("#rounds tr[data-round]")}
    assert sorted(rows) == [r["round"] for r in summary["rounds"]]
    for r in summary["rounds"]:
        cells = [td.text for td in rows[r["round"]].find_elements("css selector", "td")]
        assert cells[3] == f"{r['score']:.3f}"
        assert cells[2] == ("–" if r["final_loss"] is None else f"{r['final_loss']:.3f}")
        assert cells[1] == ("–" if r["learning_rate"] is None else f"{r['learning_rate']:.2e}")
        # The report pairs the recorded samples itself; summary.json has what the loop recorded.
        assert cells[6] == "\n".join(
            f"{c['task']}: {c['difference']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}], p = {c['p_value']:.3g}; "
            f"fixed {len(c['fixed'])}, broke {len(c['broke'])} of {c['n']}" for c in r["since_previous"]
        )
        assert [c["compared_with"] for c in r["since_previous"]] == ([] if r["round"] == 0 else [r["round"] - 1])


def test_the_sample_matrix_shows_every_sample_by_round_and_a_click_shows_its_answers(finished_run, open_report):
    run_dir, _ = finished_run
    evals = {e["round"]: e for e in events_of(run_dir) if e["event"] == "eval_result"}
    page = open_report(run_dir / "report.html")
    rows = page.elements("#sample-matrix tr[data-id]")
    assert len(rows) == len(evals[0]["tasks"][0]["samples"])
    for tr in rows:
        marks = [td.text for td in tr.find_elements("css selector", "td.cell")]
        sample_id = tr.get_attribute("data-id")
        expected = [
            next("✓" if s["correct"] else "✗" for s in evals[n]["tasks"][0]["samples"] if str(s["id"]) == sample_id)
            for n in sorted(evals)
        ]
        assert marks == expected
    last = max(evals)
    sample = evals[last]["tasks"][0]["samples"][0]
    row = next(tr for tr in rows if tr.get_attribute("data-id") == str(sample["id"]))
    row.find_elements("css selector", f'td.cell[data-round="{last}"]')[0].click()
    detail = page.text("#sample-detail")
    assert sample["question"] in detail and sample["expected"] in detail
    assert f"Round {last} {'✓' if sample['correct'] else '✗'}" in detail and sample["answer"].strip() in detail
    assert page.console_errors == [] and page.driver.get_log("browser") == []


def test_the_report_shows_data_decisions_and_configuration(finished_run, open_report):
    run_dir, _ = finished_run
    events = events_of(run_dir)
    page = open_report(run_dir / "report.html")
    data = next(e for e in events if e["event"] == "data_prepared")
    assert f"examples trained on {data['examples']}" in page.text("#data")
    decisions = page.text("#decisions")
    for d in (e for e in events if e["event"] == "decision"):
        assert d["reason"] in decisions
    config = page.text("#config")
    assert "eval_threshold 1\n" in config and "steps_per_round 2\n" in config


def test_the_report_command_rewrites_the_report_and_refuses_a_folder_that_is_no_run(finished_run, tmp_path, capsys):
    run_dir, _ = finished_run
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file() and str(run_dir / "report.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a run folder" in err and "Traceback" not in err


def test_a_run_cut_short_still_renders_what_it_recorded_marked_as_crashed(finished_run, tmp_path, open_report):
    """An older or crashed run: no summary, no state, events up to round 1's evaluation, a torn last line,
    and an event kind this version does not know."""
    source, _ = finished_run
    run_dir = tmp_path / "cut"
    run_dir.mkdir()
    shutil.copy(source / "config.json", run_dir / "config.json")
    events = events_of(source)
    upto = next(i for i, e in enumerate(events) if e["event"] == "eval_result" and e["round"] == 1)
    kept = events[:upto + 1] + [{"event": "alert", "seq": 999, "time": events[upto]["time"], "message": "from a newer version"}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in kept) + '{"event": "st')
    write_report(run_dir)
    page = open_report(run_dir / "report.html")
    assert page.console_errors == []
    assert page.text("#status") == "crashed" and "inspect-tinker resume" in page.text("#partial-banner")
    assert "stopped without a word in round 1" in page.text("#outcome")
    assert sorted(int(tr.get_attribute("data-round")) for tr in page.elements("#rounds tr[data-round]")) == [0, 1]
    assert "from a newer version" in page.text("#events")
    assert page.elements("#chart-scores") and page.elements("#chart-training")


def test_a_report_that_cannot_be_written_is_announced_and_leaves_the_outcome_alone(write_run_config, monkeypatch, capsys):
    def disk_full(run_dir):
        raise OSError("No space left on device")

    monkeypatch.setattr("inspect_tinker.loop.session.write_report", disk_full)  # the fault, injected where the loop calls it
    config = write_run_config(eval_threshold=0.0, max_rounds=1, baseline_eval=False)
    assert main(["run", str(config)]) == 0
    run_dir = config.parent / "runs" / "test"
    failed = events_of(run_dir)[-1]
    assert failed["event"] == "report_failed" and "No space left on device" in failed["message"]
    assert f"try: inspect-tinker report {run_dir}" in capsys.readouterr().out
    assert json.loads((run_dir / "summary.json").read_text())["bar_met"]


def test_a_failures_nearest_miss_is_marked_in_the_report(finished_run, tmp_path):
    source, _ = finished_run
    run_dir = tmp_path / "miss"
    shutil.copytree(source, run_dir)
    miss = {"event": "data_refused", "seq": 9999, "time": events_of(source)[-1]["time"], "round": 1,
            "where": "pool.jsonl:7", "task": "facts", "sample_id": "3", "score": 2.5, "nearest": True,
            "why": "does not mention bay, kestrel and names nothing else; no second opinion"}
    with (run_dir / "events.jsonl").open("a") as f:
        f.write(json.dumps(miss) + "\n")
    write_report(run_dir)
    page = (run_dir / "report.html").read_text()
    section = page[page.index('<section id="refusals">'):]
    assert "pool.jsonl:7 <strong>(nearest miss)</strong>" in section and "no second opinion" in section
