"""The command line: exit codes, messages without tracebacks, and the run folder it leaves."""

import json
from pathlib import Path

import pytest
from peft import PeftModel
from transformers import AutoModelForCausalLM

from evaltune.cli import main


def test_bar_met_exits_0_and_writes_a_complete_run_folder(write_run_config, capsys):
    config = write_run_config(eval_threshold=0.0)
    assert main(["run", "--config", str(config)]) == 0
    run_dir = config.parent / "runs" / "test"
    for name in ("config.json", "events.jsonl", "state.json", "summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["bar_met"] and summary["exit_code"] == 0 and summary["rounds_run"] == 1
    assert list((run_dir / "rounds" / "0" / "eval").glob("*.eval"))  # baseline Inspect log
    assert list((run_dir / "rounds" / "1" / "eval").glob("*.eval"))
    assert (run_dir / "rounds" / "1" / "trainer" / "trainer_state.pt").is_file()
    events = [json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_started" and events[-1] == "run_finished"
    assert events.count("step") == 2 and "decision" in events
    out = capsys.readouterr().out
    assert "=== Training round 1/2 ===" in out and "Bar met" in out


def test_the_saved_adapter_loads_with_peft(write_run_config, tiny_model_dir):
    config = write_run_config(eval_threshold=0.0)
    main(["run", "--config", str(config)])
    adapter = json.loads((config.parent / "runs" / "test" / "summary.json").read_text())["best_adapter"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter)
    assert any("lora_A" in n for n, _ in model.named_parameters())


def test_bar_not_met_exits_1_after_the_last_round(write_run_config, capsys):
    config = write_run_config(eval_threshold=1.0)
    assert main(["run", "--config", str(config)]) == 1
    summary = json.loads((config.parent / "runs" / "test" / "summary.json").read_text())
    assert summary["rounds_run"] == 2 and not summary["bar_met"]
    rounds = [r["learning_rate"] for r in summary["rounds"] if r["round"] > 0]
    assert rounds == pytest.approx([1e-3, 6e-4])  # decayed by the default 0.6
    assert "Bar not met" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "max_rounds=0"], "max_rounds: Input should be greater than or equal to 1"),
        (["--set", "eval_treshold=0.5"], "did you mean 'eval_threshold'"),
        (["--base-model", "/no/such/folder"], "base_model '/no/such/folder' is neither"),
        (["--base-model", "someorg/not-downloaded"], "not in the local Hugging Face cache"),
    ],
)
def test_bad_configuration_exits_2_with_one_clear_message(write_run_config, capsys, args, message):
    config = write_run_config()
    assert main(["run", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_training_data_under_strict_exits_2_naming_the_line(write_run_config, capsys):
    config = write_run_config(strict=True)
    with (config.parent / "train.jsonl").open("a") as f:
        f.write('{"instruction": "no output"}\n')
    assert main(["run", "--config", str(config)]) == 2
    assert "train.jsonl:4: missing field 'output'" in capsys.readouterr().err


def test_a_missing_config_file_exits_2(tmp_path, capsys):
    assert main(["run", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
