import json
import re
from pathlib import Path

import pytest

from inspect_tinker.config import changed_keys, load_config, parse_override
from inspect_tinker.errors import UsageError


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "eval.jsonl").write_text('{"question": "q", "answer": "a"}\n')
    return tmp_path


def write(path, text):
    path.write_text(text)
    return path


def test_json_yaml_and_toml_files_give_the_same_config(files):
    j = write(files / "c.json", json.dumps({"train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"], "max_rounds": 2}))
    y = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl]\nmax_rounds: 2\n")
    t = write(files / "c.toml", 'train_file = "train.jsonl"\neval_tasks = ["eval.jsonl"]\nmax_rounds = 2\n')
    configs = [load_config(p) for p in (j, y, t)]
    assert configs[0] == configs[1] == configs[2]
    # Relative paths are relative to the config file, not the working directory.
    assert configs[0].train_file == files / "train.jsonl"


def test_the_original_demo_keys_are_accepted(files):
    original = {
        "base_model": "SmolLM2-135M-Instruct", "train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"],
        "renderer_name": "llama3", "learning_rate": 0.0002, "eval_threshold": 0.85, "max_rounds": 3,
        "lr_decay": 0.8, "evalops_enabled": False, "evalops_test_suite_id": "suite", "steps_per_round": 1,
        "batch_size": 8, "max_seq_length": 2048, "lora_rank": 8,
    }
    config = load_config(write(files / "c.json", json.dumps(original)))
    assert config.lr_decay == 0.8 and config.lora_rank == 8


def test_an_unknown_key_names_the_nearest_valid_one(files):
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl]\nlerning_rate: 0.1\n")
    with pytest.raises(UsageError, match=r"unknown key 'lerning_rate'; did you mean 'learning_rate'\?"):
        load_config(path)


def test_nested_unknown_keys_are_checked_too(files):
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl]\ngeneration: {max_token: 3}\n")
    with pytest.raises(UsageError, match=r"generation.max_token'; did you mean 'max_tokens'"):
        load_config(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("eval_threshold: 1.5", "eval_threshold: Input should be less than or equal to 1"),
        ("max_rounds: 0", "max_rounds: Input should be greater than or equal to 1"),
        ("learning_rate: -1", r"learning_rate: must be above 0 and at most 1 \(got -1\)"),
        ("learning_rate: fast", r"learning_rate: must be a number or auto \(got 'fast'\)"),
        ("lr_schedule: step", "lr_schedule: Input should be 'constant', 'linear' or 'cosine'"),
        ("precision: fp16", "precision: Input should be 'auto', 'bf16' or 'fp32'"),
        ("batch_size: many", "batch_size: Input should be a valid integer"),
        ("data: {near_duplicate_threshold: 0.99}", "data.near_duplicate_threshold: Input should be less than or equal to 0.98"),
        ("data: {decontamination: maybe}", "data.decontamination: Input should be 'drop', 'warn' or 'off'"),
        # Runs that could never finish.
        ("max_rounds: 1000000000", "max_rounds: Input should be less than or equal to 1000 "),
        ("steps_per_round: 1000000000000000000000", "steps_per_round: Input should be less than or equal to 1000000 "),
        ("max_steps_per_round: 1000000000", "max_steps_per_round: Input should be less than or equal to 1000000 "),
        ("tune: {steps_per_round: [4, 1000000000]}", r"tune.steps_per_round\[1\]: Input should be less than or equal to 1000000 "),
        ("tune: {max_rounds: 1000000000}", "tune.max_rounds: Input should be less than or equal to 1000 "),
        ("seed: -1", r"seed: Input should be greater than or equal to 0 \(got -1\)"),
        ("micro_batch_size: 16", r"micro_batch_size \(16\) is larger than batch_size \(8\)"),
        ("run_name: ../../x", r"run_name: must be a plain folder name, without / or \\ and not \. or \.\. \(got '\.\./\.\./x'\)"),
        ("run_name: nested/run", "run_name: must be a plain folder name"),
        ("run_name: '..'", "run_name: must be a plain folder name"),
        ("max_cost: 5", r"max_cost needs price_per_million_tokens \(train, prefill, sample\)"),
        ("price_per_million_tokens: {train: 1, sample: 2}", r"price_per_million_tokens.prefill"),
    ],
)
def test_out_of_range_values_are_explained(files, line, message):
    path = write(files / "c.yaml", f"train_file: train.jsonl\neval_tasks: [eval.jsonl]\n{line}\n")
    with pytest.raises(UsageError, match=message):
        load_config(path)


def test_every_recorded_path_is_absolute_whether_from_a_file_or_an_override(files, monkeypatch):
    monkeypatch.chdir(files)
    (files / "pool.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (files / "tasks.py").write_text("")
    (files / "model").mkdir()
    (files / "model" / "config.json").write_text("{}")  # a model folder: checked before any run starts
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl, tasks.py@t]\nbase_model: ./model\n")
    config = load_config(Path("c.yaml"), {"candidate_file": "pool.jsonl", "output_dir": "out", "mlflow_tracking_uri": "mlruns"})
    assert config.train_file == files / "train.jsonl" and config.candidate_file == files / "pool.jsonl"
    assert config.output_dir == files / "out" and config.mlflow_tracking_uri == str(files / "mlruns")
    assert config.eval_tasks[0].path == files / "eval.jsonl" and config.eval_tasks[1].task == f"{files}/tasks.py@t"
    assert config.base_model == str(files / "model")
    assert load_config(path, {"mlflow_tracking_uri": "databricks"}).mlflow_tracking_uri == "databricks"


def test_a_run_needs_an_evaluation_task_but_checking_data_alone_does_not(files):
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: []\n")
    with pytest.raises(UsageError, match="eval_tasks: list at least one evaluation task"):
        load_config(path)
    assert load_config(path, need_eval_tasks=False).eval_tasks == []
    assert load_config(write(files / "d.yaml", "train_file: train.jsonl\n"), need_eval_tasks=False).eval_tasks == []


def test_missing_files_are_reported_before_any_work(files):
    path = write(files / "c.yaml", "train_file: nope.jsonl\neval_tasks: [eval.jsonl]\n")
    with pytest.raises(UsageError, match="train_file .*nope.jsonl does not exist"):
        load_config(path)
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [gone.jsonl]\n")
    with pytest.raises(UsageError, match=r"eval_tasks\[0\] file .*gone.jsonl does not exist"):
        load_config(path)
    with pytest.raises(UsageError, match="config file .*absent.yaml does not exist"):
        load_config(files / "absent.yaml")


def test_required_keys_and_syntax_errors_are_reported(files):
    with pytest.raises(UsageError, match="missing required key 'train_file'"):
        load_config(write(files / "c.yaml", "eval_tasks: [eval.jsonl]\n"))
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(write(files / "c.yaml", "train_file: [unclosed\n"))


def test_overrides_replace_file_values_including_nested_keys(files):
    path = write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl]\nmax_rounds: 5\n")
    overrides = dict(map(parse_override, ["max_rounds=2", "generation.max_tokens=7", "strict=true"]))
    config = load_config(path, overrides)
    assert (config.max_rounds, config.generation.max_tokens, config.strict) == (2, 7, True)
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_override("max_rounds")


def test_task_shorthands_expand_and_task_files_are_relative_to_the_config(files):
    (files / "tasks.py").write_text("")
    path = write(files / "c.yaml", "train_file: train.jsonl\n"
                 "eval_tasks: [eval.jsonl, tasks.py@mine, inspect_evals/gsm8k, simple_qa]\n")
    qa, mine, registry, simple = load_config(path).eval_tasks
    assert (qa.type, qa.path, qa.display_name) == ("qa", files / "eval.jsonl", "eval")
    assert (mine.type, mine.task, mine.display_name) == ("inspect", f"{files}/tasks.py@mine", "mine")
    assert (registry.task, registry.display_name) == ("inspect_evals/gsm8k", "gsm8k")
    assert (simple.task, simple.display_name) == ("inspect_tinker/general_knowledge", "simple_qa")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{path: eval.jsonl, role: confirm}", "at least one task must gate"),
        ("{path: eval.jsonl, role: confirm, threshold: 0.5}", "confirmation tasks never gate"),
        ("{path: eval.jsonl, scorer: exakt}", "unknown scorer 'exakt'; did you mean 'exact'"),
        ("{path: eval.jsonl, scorer: {name: pattern, pattern: '('}}", "eval_tasks[0].scorer.pattern: not a valid regular"),
        ("{path: eval.jsonl, scorer: {name: numeric, tolerence: 1}}", "did you mean 'tolerance'"),
        ("{path: eval.jsonl, scorer: choice}", "the `choice` scorer needs a multiple_choice task"),
        ("{path: eval.jsonl, type: multiple_choice, scorer: exact}", "multiple_choice tasks are scored by `choice`"),
        ("{path: eval.jsonl, task: x.py@y}", "give either `path`"),
        ("{path: eval.jsonl, wieght: 2}", "unknown key 'eval_tasks[0].wieght'; did you mean 'weight'"),
    ],
)
def test_bad_task_entries_are_explained_with_their_key(files, entry, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        load_config(write(files / "c.yaml", f"train_file: train.jsonl\neval_tasks: [{entry}]\n"))


def test_two_tasks_cannot_share_a_name(files):
    with pytest.raises(UsageError, match="eval appears twice"):
        load_config(write(files / "c.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl, eval.jsonl]\n"))


def test_changed_keys_names_nested_differences_and_ignores_where_the_run_goes():
    old = {"learning_rate": 1e-4, "output_dir": "a", "run_name": "x", "generation": {"max_tokens": 32}}
    new = {"learning_rate": 2e-4, "output_dir": "b", "run_name": "y", "generation": {"max_tokens": 64}}
    assert changed_keys(old, new) == ["generation.max_tokens", "learning_rate"]


def test_a_problem_in_a_command_line_value_names_the_option_not_the_file(files):
    path = write(files / "base.yaml", "train_file: train.jsonl\neval_tasks: [eval.jsonl]\n")
    with pytest.raises(UsageError) as caught:
        load_config(path, {"max_rounds": 0, "generation.max_tokens": 0},
                    given={"max_rounds": "--set max_rounds", "generation.max_tokens": "--set generation.max_tokens"})
    message = str(caught.value)
    assert message.startswith("invalid configuration on the command line:") and "base.yaml" not in message
    assert "max_rounds: Input should be greater than or equal to 1 (got 0) (from --set max_rounds)" in message
    assert "generation.max_tokens: Input should be greater than or equal to 1 (got 0) (from --set generation.max_tokens)" in message


def test_a_set_value_that_is_not_yaml_names_the_set(files):
    with pytest.raises(UsageError, match=r"--set eval_tasks=\[a, b: the value is not valid YAML \(expected ',' or ']'"):
        parse_override("eval_tasks=[a, b")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("train_file: t.jsonl\n".encode("utf-16"), r"c.yaml: the file is UTF-16 \(it starts with a UTF-16 byte order mark\)"),
        (b"train_file: caf\xe9.jsonl\n", r"c.yaml:1: not valid UTF-8 \(byte 0xe9 at column 16\)"),
    ],
)
def test_a_config_file_that_is_not_utf8_says_what_it_is(files, content, message):
    path = files / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        load_config(path)


@pytest.mark.parametrize(
    ("overrides", "option", "message"),
    [
        ({"eval_tasks": ["missing_eval.jsonl"]}, "--set eval_tasks", r"eval_tasks\[0\] file .*missing_eval.jsonl does not exist"),
        ({"train_file": "missing_train.jsonl"}, "--set train_file", "train_file .*missing_train.jsonl does not exist"),
        ({"candidate_file": "missing_pool.jsonl"}, "--set candidate_file", "candidate_file .*missing_pool.jsonl does not exist"),
    ],
)
def test_a_missing_file_named_by_a_set_value_names_the_set_not_the_config_file(files, overrides, option, message):
    path = write(files / "base.json", json.dumps({"train_file": "train.jsonl", "eval_tasks": ["eval.jsonl"]}))
    with pytest.raises(UsageError) as caught:
        load_config(path, overrides, given={key: f"--set {key}" for key in overrides})
    assert re.match(rf"{re.escape(option)}: {message}", str(caught.value)), str(caught.value)
    assert "base.json" not in str(caught.value)
