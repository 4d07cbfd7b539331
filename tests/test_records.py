import json

import pytest

from evaltune.data import load_training_records
from evaltune.errors import UsageError


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_instruction_records_become_user_and_assistant_turns(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [json.dumps({"instruction": "Q?", "input": "ctx", "output": "A.", "system": "S"})])
    loaded = load_training_records(path)
    assert loaded.conversations == [
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?\n\nctx"}, {"role": "assistant", "content": "A."}]
    ]


def test_chat_records_keep_their_messages(tmp_path):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    loaded = load_training_records(write_lines(tmp_path / "t.jsonl", [json.dumps({"messages": messages})]))
    assert loaded.conversations == [messages]


def test_invalid_records_are_dropped_with_line_numbers_and_reasons(tmp_path):
    path = write_lines(
        tmp_path / "t.jsonl",
        [
            json.dumps({"instruction": "ok", "output": "fine"}),
            "{not json",
            json.dumps({"instruction": "no output"}),
            json.dumps({"instruction": "empty", "output": "  "}),
            json.dumps({"messages": [{"role": "robot", "content": "x"}]}),
            json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),
            json.dumps([1, 2]),
            json.dumps({"instruction": 3, "output": "x"}),
        ],
    )
    loaded = load_training_records(path)
    assert len(loaded.conversations) == 1
    reasons = {d.line: d.reason for d in loaded.dropped}
    assert set(reasons) == {2, 3, 4, 5, 6, 7, 8}
    assert "invalid JSON" in reasons[2]
    assert "missing field 'output'" in reasons[3]
    assert "'output' is empty" in reasons[4]
    assert "unknown role 'robot'" in reasons[5]
    assert "no assistant message" in reasons[6]
    assert "expected a JSON object" in reasons[7]
    assert "must be a string" in reasons[8]


def test_strict_mode_rejects_the_first_invalid_record_naming_file_and_line(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [json.dumps({"instruction": "a", "output": "b"}), "{oops"])
    with pytest.raises(UsageError, match=r"t\.jsonl:2: invalid JSON"):
        load_training_records(path, strict=True)


def test_a_file_without_any_valid_record_is_an_error(tmp_path):
    with pytest.raises(UsageError, match="no valid training record"):
        load_training_records(write_lines(tmp_path / "t.jsonl", ["{}", "[]"]))
