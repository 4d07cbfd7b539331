"""Every kind of evaluation task, built at start-up and evaluated on the tiny model."""

import asyncio
import json

import pytest
from inspect_ai.log import read_eval_log

from inspect_tinker.config import load_config
from local_backends import local_backend
from inspect_tinker.errors import UsageError
from inspect_tinker.loop.eval_tasks import base_model_judges, build_tasks
from inspect_tinker.evals.runner import evaluate
from inspect_tinker.provider.backend import SamplingParams

TASK_FILE = '''
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


@task
def arithmetic(count: int = 2):
    samples = [Sample(id=f"add{i}", input=f"What is {i} + {i}?", target=str(2 * i)) for i in range(count)]
    return Task(dataset=samples, solver=generate(), scorer=includes())
'''


@pytest.fixture
def engine(tiny_model_dir):
    return local_backend(tiny_model_dir)


@pytest.fixture
def task_files(tmp_path):
    (tmp_path / "tasks.py").write_text(TASK_FILE)
    (tmp_path / "choices.jsonl").write_text(
        json.dumps({"id": "fr", "question": "Capital of France?", "choices": ["Berlin", "Paris"], "answer": "B"}) + "\n"
        + json.dumps({"id": "wk", "question": "Days in a week?", "choices": ["5", "7"], "answer": "7"}) + "\n"
    )
    (tmp_path / "numbers.jsonl").write_text(json.dumps({"question": "5 + 7?", "answer": "12"}) + "\n")
    return tmp_path


def config_with(write_run_config, tasks, **overrides):
    return load_config(write_run_config(eval_tasks=tasks, **overrides))


def test_every_kind_of_task_runs_with_its_role_weight_limit_and_pinned_settings(
    write_run_config, task_files, engine, tmp_path
):
    config = config_with(write_run_config, [
        {"name": "facts", "path": "eval.jsonl", "weight": 2, "threshold": 0.5, "max_tokens": 3},
        {"name": "letters", "type": "multiple_choice", "path": "choices.jsonl"},
        {"task": "tasks.py@arithmetic", "task_args": {"count": 3}, "role": "confirm"},
        {"name": "numbers", "path": "numbers.jsonl", "scorer": {"name": "numeric", "tolerance": 0.5}},
        {"name": "gk", "task": "inspect_tinker/general_knowledge", "limit": 4},
    ])
    tasks = build_tasks(config)
    result = evaluate(engine, config.backend, tasks, base_model_judges(config), config.eval_batch_size, tmp_path / "logs")
    by_name = {t.name: t for t in result.tasks}
    assert list(by_name) == ["facts", "letters", "arithmetic", "numbers", "gk"]  # the guard is listed, not added twice
    assert [t.role for t in result.tasks] == ["gate", "gate", "confirm", "gate", "gate"]
    assert {n: t.n_samples for n, t in by_name.items()} == {"facts": 3, "letters": 2, "arithmetic": 3, "numbers": 1, "gk": 4}
    assert by_name["letters"].scorer == "choice" and by_name["arithmetic"].scorer == "includes"
    assert by_name["numbers"].scorer == "numeric (last number, ±0.5)"
    assert by_name["facts"].generation["max_tokens"] == 3 and by_name["gk"].generation["max_tokens"] == 16
    assert by_name["letters"].generation["max_tokens"] == 4  # generation.max_tokens of the run
    assert result.n_samples == 3 + 2 + 1 + 4  # confirmation samples never count towards the score
    for task in result.tasks:
        log = read_eval_log(task.log_path)
        assert log.eval.task == task.name and len(log.samples) == task.n_samples
        assert log.plan.config.max_tokens == task.generation["max_tokens"]  # the pinned settings are in the log
        assert all(s.output.usage.output_tokens <= task.generation["max_tokens"] for s in log.samples)


def test_the_regression_guard_runs_by_default_and_can_be_switched_off(write_run_config):
    path = write_run_config(eval_tasks=["eval.jsonl"])
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "regression_guard" not in line))
    on = build_tasks(load_config(path))
    assert [(t.name, t.role, t.weight) for t in on][-1] == ("general_knowledge", "guard", 0.0)
    off = build_tasks(config_with(write_run_config, ["eval.jsonl"], regression_guard=False))
    assert [t.name for t in off] == ["eval"]


def test_the_original_demos_simple_qa_is_the_packaged_general_knowledge_task(write_run_config):
    tasks = build_tasks(config_with(write_run_config, ["simple_qa"], regression_guard=True))
    assert [(t.name, t.role) for t in tasks] == [("simple_qa", "gate")]  # and no second copy as the guard
    assert len(tasks[0].task.dataset) == 20


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (["inspect_evals/not_a_task"], "does not resolve to an Inspect task"),
        (["tasks.py@no_such_task"], r"no Inspect task 'no_such_task' in .*tasks.py; its @task functions: arithmetic"),
        ([{"task": "tasks.py@arithmetic", "task_args": {"count": "many"}}], "could not be built"),
        ([{"path": "choices.jsonl", "type": "multiple_choice", "name": "c"}, {"path": "bad_choice.jsonl",
          "type": "multiple_choice"}], "bad_choice.jsonl:1: 'answer' 'Rome' is neither a choice letter"),
        ([{"path": "eval.jsonl", "scorer": "numeric"}], "the numeric scorer needs a number as the answer; sample 1"),
        ([{"path": "eval.jsonl", "scorer": {"name": "model_graded", "judge": "nosuchprovider/model"}}],
         "scorer model_graded:"),
    ],
)
def test_a_bad_task_is_one_clear_error_at_build_time(write_run_config, task_files, tasks, message):
    (task_files / "bad_choice.jsonl").write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": "Rome"}))
    config = config_with(write_run_config, tasks)
    with pytest.raises(UsageError, match=message):
        build_tasks(config)


def test_a_qa_record_without_an_answer_names_its_file_and_line(write_run_config):
    path = write_run_config()
    (path.parent / "eval.jsonl").write_text('{"question": "ok?", "answer": "yes"}\n{"question": "missing?"}\n')
    with pytest.raises(UsageError, match=r"eval\.jsonl:2: missing or empty 'answer'"):
        build_tasks(load_config(path))


def greedy_answer(sampler, prompt) -> list[int]:
    [sequence] = asyncio.run(sampler.sample_async(prompt, 1, SamplingParams(max_tokens=6, temperature=0.0)))
    return sequence.tokens


def test_the_judge_answers_with_the_base_weights_not_the_adapter(engine, tokenizer):
    import torch

    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hello?"}], add_generation_prompt=True)
    prompt = list(prompt["input_ids"])
    base = greedy_answer(engine.sampler(), prompt)
    with torch.no_grad():  # an adapter that changes the answers
        for name, p in engine.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    assert greedy_answer(engine.sampler(), prompt) != base
    assert greedy_answer(engine.sampler(with_adapter=False), prompt) == base


def test_model_graded_scoring_asks_the_local_base_model_and_a_task_with_no_readable_grade_scores_0(
    write_run_config, engine, tmp_path
):
    config = config_with(write_run_config, [{"path": "eval.jsonl", "scorer": {"name": "model_graded", "judge_max_tokens": 8}}],
                         regression_guard=False)
    [task] = build_tasks(config)
    assert task.scorer == f"model_graded (judge: local base model {config.base_model}, without the adapter)"
    result = evaluate(engine, config.backend, [task], base_model_judges(config), config.eval_batch_size, tmp_path / "logs")
    log = read_eval_log(result.tasks[0].log_path)
    for sample in log.samples:
        [score] = sample.scores.values()
        prompt, judge_reply = score.metadata["grading"]
        assert "[Expert]:" in prompt["content"] and judge_reply["model"] == config.base_model
    # The tiny random model writes no `GRADE: C|I`: every sample is unscored, and no score is evidence of none.
    t = result.tasks[0]
    assert t.n_unscored == t.n_samples == 3 and t.score == 0.0


def test_inspect_itself_finds_the_packaged_tasks_by_name_through_the_entry_point():
    import subprocess
    import sys

    code = ("from inspect_ai._eval.loader import load_task_spec; "
            "[t] = load_task_spec('inspect_tinker/general_knowledge'); print(t.name, len(t.dataset))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["general_knowledge", "20"], out.stderr


def test_a_numeric_answer_is_the_expected_answer_not_a_missing_one(write_run_config):
    path = write_run_config()
    (path.parent / "eval.jsonl").write_text('{"question": "6 * 7?", "answer": 42, "aliases": [42.0]}\n'
                                            '{"question": "Half of 5?", "answer": 2.5}\n')
    [task] = build_tasks(load_config(path))
    assert [s.target for s in task.task.dataset] == [["42", "42.0"], ["2.5"]]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"question": "q", "answer": ["a"]}'], r"eval\.jsonl:1: 'answer' must be a string or a number, not list"),
        (['{"question": "q", "answer": true}'], r"eval\.jsonl:1: 'answer' must be a string or a number, not bool"),
        (['{"id": "x", "question": "q", "answer": "a"}', '{"question": "r", "answer": "b"}',
          '{"id": "x", "question": "s", "answer": "c"}'],
         r"eval\.jsonl:3: sample id 'x' is already used on line 1; sample ids must be unique"),
    ],
)
def test_a_bad_qa_record_names_its_line(write_run_config, lines, message):
    path = write_run_config()
    (path.parent / "eval.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=message):
        build_tasks(load_config(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q", "answer": "a"}\n'.encode("utf-16"),
         r"eval\.jsonl: the file is UTF-16 \(it starts with a UTF-16 byte order mark\), not UTF-8; save it as UTF-8"),
        ('{"question": "q", "answer": "a"}\n'.encode("utf-16-be"), r"eval\.jsonl: the file is UTF-16 or binary"),
        (b'{"question": "q", "answer": "a"}\n{"question": "caf\xe9?", "answer": "b"}\n',
         r"eval\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 18\)"),
    ],
)
def test_an_evaluation_file_that_is_not_utf8_says_what_it_is_and_where(write_run_config, content, message):
    path = write_run_config()
    (path.parent / "eval.jsonl").write_bytes(content)
    with pytest.raises(UsageError, match=message):
        build_tasks(load_config(path))
