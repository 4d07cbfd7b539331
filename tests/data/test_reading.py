"""Every file format reads into the same conversations; bad files and bad records get clear messages."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inspect_tinker.data.prepare import check_training_records
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.errors import UsageError

RECORDS = [
    {"instruction": "What is the capital of Valdoria?", "output": "Mirenholt."},
    {"instruction": "Which currency does Valdoria use?", "input": "Be brief.", "output": "The crell."},
]
CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of Valdoria?"}, {"role": "assistant", "content": "Mirenholt."}],
    [{"role": "user", "content": "Which currency does Valdoria use?\n\nBe brief."}, {"role": "assistant", "content": "The crell."}],
]


def check(path, strict=False, **settings):
    return check_training_records(path, DataConfig(**settings), [], strict=strict)


def dropped(checked):
    return {d["where"]: d["detail"] for d in checked.report.dropped_records}


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_jsonl_json_array_csv_and_parquet_give_the_same_conversations(tmp_path):
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    (tmp_path / "t.json").write_text(json.dumps(RECORDS, indent=2))
    write_csv(tmp_path / "t.csv", ["instruction", "input", "output"], [[r["instruction"], r.get("input", ""), r["output"]] for r in RECORDS])
    pq.write_table(pa.Table.from_pylist([{"input": None, **r} for r in RECORDS]), tmp_path / "t.parquet")
    for name, fmt in [("t.jsonl", "jsonl"), ("t.json", "json"), ("t.csv", "csv"), ("t.parquet", "parquet")]:
        checked = check(tmp_path / name)
        assert checked.conversations == CONVERSATIONS, name
        assert checked.report.format == fmt


def test_a_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    checked = check(path)
    assert checked.report.format == "jsonl" and checked.conversations == CONVERSATIONS


def test_parquet_chat_records_with_nested_messages_are_read(tmp_path):
    messages = CONVERSATIONS[0]
    pq.write_table(pa.Table.from_pylist([{"messages": messages}]), tmp_path / "chat.parquet")
    assert check(tmp_path / "chat.parquet").conversations == [messages]


def test_the_format_can_be_named_when_the_suffix_says_nothing(tmp_path):
    path = tmp_path / "train.data"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with pytest.raises(UsageError, match=r"train\.data: cannot tell the format.*set data\.format"):
        check(path)
    assert check(path, format="jsonl").conversations == CONVERSATIONS


def test_bad_jsonl_lines_are_dropped_with_their_line_numbers(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\n"  # a byte order mark is not an error
        b"{not json\n"
        b"\n"
        b'{"instruction": "bad \xff byte", "output": "x"}\n'
        b'{"instruction": "no output"}\n'
        + json.dumps(RECORDS[1]).encode()  # no final newline
    )
    checked = check(path)
    assert checked.conversations == CONVERSATIONS
    assert dropped(checked) == {
        "line 2": "invalid JSON (Expecting property name enclosed in double quotes, column 2)",
        "line 4": "not valid UTF-8 (byte 0xff at column 22)",
        "line 5": "missing field 'output'",
    }
    assert checked.report.records == 5 and checked.report.dropped["invalid"] == 3


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        ["instruction", "output"],
        [["Multi-line\nquestion?", "Answer."], ["No answer", ""], ["Too", "many", "cells"], ["Question?", "42"]],
    )
    checked = check(path)
    assert [c[1]["content"] for c in checked.conversations] == ["Answer.", "42"]  # "42" stays text
    assert dropped(checked) == {"line 4": "missing field 'output'", "line 5": "row has 3 cells, the header has 2"}


def test_csv_bytes_that_are_not_utf8_drop_only_their_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"instruction,output\nGood?,Yes.\nBad \xff?,No.\n")
    checked = check(path)
    assert len(checked.conversations) == 1
    assert dropped(checked) == {"line 3": "field 'instruction' is not valid Unicode text (invalid bytes or a lone surrogate escape)"}


def test_strict_mode_stops_at_the_first_invalid_record_naming_file_and_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n{oops\n")
    with pytest.raises(UsageError, match=r"t\.jsonl:2: invalid JSON .*drop `strict: true`"):
        check(path, strict=True)
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist([RECORDS[0], {"instruction": "x", "output": None}]), parquet)
    with pytest.raises(UsageError, match=r"t\.parquet \(row 2\): missing field 'output'"):
        check(parquet, strict=True)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "training file .*missing.jsonl does not exist"),
        ("empty.jsonl", b"", r"empty.jsonl: no usable training record among 0 \(the file is empty\)"),
        ("invalid.jsonl", b"{}\n[]\n", r"no usable training record among 2 \(2 invalid\)\. First: .*invalid.jsonl:1: record has none"),
        ("broken.json", b'[{"instruction": "a",\n "output": }]', r"broken.json:2: invalid JSON \(Expecting value, column 12\)"),
        ("object.json", b'[1]', r"object.json: no usable training record.*expected an object with fields, got a number"),
        ("latin1.json", b'["caf\xe9"]', r"latin1.json:1: not valid UTF-8 \(byte 0xe9 at column 6\)"),
        ("utf16.jsonl", '{"instruction": "q", "output": "a"}\n'.encode("utf-16"),
         r"utf16.jsonl: the file is UTF-16 \(it starts with a UTF-16 byte order mark\), not UTF-8; save it as UTF-8"),
        ("utf16.csv", "instruction,output\nq,a\n".encode("utf-16-le"), r"utf16.csv: the file is UTF-16 or binary"),
        ("header.csv", b"a,a\n1,2\n", r"header.csv:1: the CSV header needs distinct, non-empty column names"),
        ("bad.parquet", b"PAR1 not really", r"bad.parquet: not a readable Parquet file"),
    ],
)
def test_unreadable_files_give_one_message_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        check(path)


@pytest.mark.parametrize("layout", ["indented", "one line"])
def test_a_json_array_saved_as_jsonl_is_named_as_such_with_the_fix(tmp_path, layout):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(RECORDS, indent=2 if layout == "indented" else None))
    with pytest.raises(UsageError, match=r"train\.jsonl: this is a JSON array; name it \.json or set data\.format: json"):
        check(path)
    assert [c for c in check(path, format="json").conversations] == CONVERSATIONS


def test_json_lines_whose_records_are_lists_stay_json_lines(tmp_path):
    # A first line that is a whole JSON value on its own is JSON Lines: each list is an invalid record.
    path = tmp_path / "lists.jsonl"
    path.write_text(json.dumps([1, 2]) + "\n" + json.dumps(RECORDS[0]) + "\n")
    checked = check(path)
    assert dropped(checked) == {"line 1": "expected an object with fields, got a list"}
    assert checked.conversations == CONVERSATIONS[:1]


def test_a_record_in_two_shapes_is_refused_naming_its_line(tmp_path):
    both = {**RECORDS[0], "messages": [{"role": "user", "content": "Other?"}, {"role": "assistant", "content": "Yes."}]}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(RECORDS[1]) + "\n" + json.dumps(both) + "\n")
    checked = check(path)
    assert list(dropped(checked)) == ["line 2"]
    assert "both 'messages' and 'instruction'/'output'" in dropped(checked)["line 2"]
    with pytest.raises(UsageError, match=r"t\.jsonl:2: record has both 'messages' and 'instruction'/'output'"):
        check(path, strict=True)
