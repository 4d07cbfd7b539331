"""Property: whatever bytes or records a training file holds, the data step yields valid
examples with a report that accounts for every record, or stops with one UsageError; it
never raises anything else."""

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from inspect_tinker.data.prepare import check_training_records, prepare_training_data
from inspect_tinker.data.settings import DataConfig
from inspect_tinker.errors import UsageError

MAX_SEQ_LENGTH = 64
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Any code point, lone surrogates and control characters included; and text that passes the checks.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
readable_text = st.text(st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
text_or_junk = st.one_of(readable_text, readable_text, readable_text, readable_text, any_text, json_values)
message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "assistant", "system", "robot"]) | json_values,
                                 "content": text_or_junk})
records = st.one_of(
    json_values,
    st.fixed_dictionaries({"instruction": text_or_junk, "output": text_or_junk},
                          optional={"input": text_or_junk, "system": text_or_junk}),
    st.fixed_dictionaries({"prompt": text_or_junk, "completion": text_or_junk}),
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4) | json_values}),
)


def run_data_step(path, tokenizer):
    data = DataConfig()
    try:
        checked = check_training_records(path, data, [])
        examples, report = prepare_training_data(checked, tokenizer, MAX_SEQ_LENGTH, data)
    except UsageError as err:
        assert str(path) in str(err)
        event("a clear error")  # --hypothesis-show-statistics shows how often each outcome came
        return
    event("examples")
    assert report.examples == len(examples) == report.records - report.dropped_total
    for e in examples:
        assert len(e.input_ids) == len(e.loss_mask) <= MAX_SEQ_LENGTH
        assert set(e.loss_mask) <= {0, 1} and e.n_target_tokens >= 1
    json.dumps(report.to_dict())  # the report is plain JSON


@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from(["jsonl", "json", "csv", "parquet"]))
def test_arbitrary_bytes_in_any_format_give_examples_or_one_clear_error(tmp_path, tokenizer, content, suffix):
    path = tmp_path / f"train.{suffix}"
    path.write_bytes(content)
    run_data_step(path, tokenizer)


@FUZZ
@given(lines=st.lists(st.one_of(records.map(json.dumps), records.map(json.dumps), any_text), min_size=1, max_size=6))
def test_arbitrary_records_give_examples_or_one_clear_error(tmp_path, tokenizer, lines):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    run_data_step(path, tokenizer)


@pytest.mark.parametrize("suffix", ["json", "csv"])
@FUZZ
@given(rows=st.lists(st.fixed_dictionaries({"instruction": any_text | readable_text, "output": any_text | readable_text}),
                     min_size=1, max_size=4))
def test_arbitrary_text_in_json_arrays_and_csv_gives_examples_or_one_clear_error(tmp_path, tokenizer, suffix, rows):
    import csv

    path = tmp_path / f"train.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps(rows))
    else:
        with path.open("w", newline="", encoding="utf-8", errors="surrogatepass") as f:
            writer = csv.DictWriter(f, ["instruction", "output"])
            writer.writeheader()
            writer.writerows(rows)
    run_data_step(path, tokenizer)
