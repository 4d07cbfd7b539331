"""`precision: auto` on CPU: bf16 only where a probe measured it faster; the choice cached per machine
and recorded in the run's events. The probe's timings are given, so nothing here depends on speed."""

import json

import pytest
import torch

from inspect_tinker.cli import main
from inspect_tinker.provider import precision
from inspect_tinker.provider.precision import choose_cpu_precision, decide_precision
from local_backends import local_backend


@pytest.mark.parametrize(
    ("fp32_seconds", "bf16_seconds", "chosen"),
    [
        (4.2, 1.0, "bf16"),  # AVX512-BF16 on an AMD EPYC: bf16 matmuls 4.2x as fast
        (1.0, 1.6, "fp32"),  # bf16 slower than fp32 (an Intel Xeon with the flag and no AMX)
        (1.1, 1.0, "fp32"),  # faster, but not by enough to carry the rest of a step
    ],
)
def test_bf16_is_chosen_only_where_its_matmuls_are_clearly_faster(fp32_seconds, bf16_seconds, chosen):
    choice, reason = decide_precision(fp32_seconds, bf16_seconds)
    assert choice == chosen and f"{fp32_seconds / bf16_seconds:.2f}x as fast as fp32" in reason


def scripted_probe(monkeypatch, fp32_seconds, bf16_seconds) -> list:
    """Make the probe report these times; returns the list of its calls."""
    calls = []
    monkeypatch.setattr(precision, "probe", lambda: calls.append(1) or (fp32_seconds, bf16_seconds))
    return calls


def test_the_measurement_is_cached_per_cpu_torch_version_and_thread_count(monkeypatch, tmp_path):
    calls = scripted_probe(monkeypatch, 1.0, 1.6)
    first = choose_cpu_precision(tmp_path)
    assert (first.precision, first.cached, len(calls)) == ("fp32", False, 1)
    again = choose_cpu_precision(tmp_path)
    assert (again.precision, again.cached, len(calls)) == ("fp32", True, 1)  # not measured again
    assert "measured once for" in again.reason and str(tmp_path) in again.reason
    [key] = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    assert precision.cpu_model_name() in key and torch.__version__ in key
    assert key.endswith(f"{torch.get_num_threads()} threads")

    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)  # another thread count is another machine, as far as speed goes
    try:
        assert not choose_cpu_precision(tmp_path).cached and len(calls) == 2
    finally:
        torch.set_num_threads(threads)


def test_a_damaged_cache_is_measured_again(monkeypatch, tmp_path):
    calls = scripted_probe(monkeypatch, 4.0, 1.0)
    (tmp_path / precision.CACHE_FILE).write_text("{not json")
    assert choose_cpu_precision(tmp_path).precision == "bf16" and len(calls) == 1


def test_auto_trains_in_the_measured_precision_and_the_run_records_why(monkeypatch, tmp_path, write_run_config, capsys):
    monkeypatch.setenv("INSPECT_TINKER_CACHE", str(tmp_path / "cache"))  # the tiny model is a folder: nothing else cached
    scripted_probe(monkeypatch, 1.0, 1.6)
    config = write_run_config(max_rounds=1, eval_threshold=0.0, baseline_eval=False)  # precision: auto
    assert main(["run", str(config)]) == 0
    events = [json.loads(line) for line in (config.parent / "runs" / "test" / "events.jsonl").read_text().splitlines()]
    info = next(e for e in events if e["event"] == "backend_ready")["info"]
    assert info["dtype"] == "fp32" and "only 0.62x as fast as fp32" in info["precision_reason"]
    out = capsys.readouterr().out
    assert "Precision (auto): fp32, as bf16 autocast matmuls ran only 0.62x as fast as fp32 on this CPU" in out


def test_an_explicit_precision_is_not_measured(monkeypatch, tiny_model_dir):
    calls = scripted_probe(monkeypatch, 1.0, 1.6)
    engine = local_backend(tiny_model_dir, precision="bf16")
    assert engine.info.dtype == "bf16 autocast" and engine.info.precision_reason is None and calls == []
