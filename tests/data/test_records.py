"""Record shapes become conversations; every invalid record says which field is wrong and how."""

import pytest

from inspect_tinker.data.records import InvalidRecord, record_to_conversation

QA = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]


def test_instruction_records_become_user_and_assistant_turns():
    record = {"instruction": "Q?", "input": "ctx", "output": "A.", "system": "S"}
    assert record_to_conversation(record) == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "Q?\n\nctx"}, {"role": "assistant", "content": "A."}
    ]


def test_prompt_completion_records_become_user_and_assistant_turns():
    assert record_to_conversation({"prompt": "Q?", "completion": "A."}) == QA


def test_chat_records_keep_their_messages():
    messages = [{"role": "system", "content": "S"}, *QA, {"role": "user", "content": "More?"}, {"role": "assistant", "content": "No."}]
    assert record_to_conversation({"messages": messages}) == messages


def test_field_and_role_names_of_other_schemas_are_mapped():
    sharegpt = {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}
    fields = {"messages": "conversations", "role": "from", "content": "value"}
    assert record_to_conversation(sharegpt, fields, {"human": "user", "gpt": "assistant"}) == QA
    assert record_to_conversation({"question": "Q?", "answer": "A."}, {"instruction": "question", "output": "answer"}) == QA


def test_an_empty_optional_field_is_left_out():
    assert record_to_conversation({"instruction": "Q?", "input": "  ", "output": "A.", "system": ""}) == QA


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "expected an object with fields, got a list"),
        ({"instruction": "no output"}, "missing field 'output'"),
        ({"output": "no instruction"}, "missing field 'instruction'"),
        ({"prompt": "Q?"}, "missing field 'completion'"),
        ({"instruction": "Q?", "output": "  "}, "field 'output' is empty"),
        ({"instruction": 3, "output": "x"}, "field 'instruction' must be a string, got a number"),
        ({"instruction": "Q?", "output": "A.", "input": ["x"]}, "field 'input' must be a string, got a list"),
        ({"instruction": "Q?", "output": "A.", "system": {"a": 1}}, "field 'system' must be a string, got an object"),
        ({"instruction": "Q\ud800?", "output": "A."}, "'instruction' is not valid Unicode text"),
        ({"question": "Q?", "answer": "A."}, "record has none of the fields 'messages', 'prompt', 'instruction'"),
        ({"messages": []}, "field 'messages' must be a non-empty list"),
        ({"messages": "hi"}, "field 'messages' must be a non-empty list"),
        ({"messages": ["hi"]}, "messages[0] must be an object with 'role' and 'content'"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0] has unknown role 'robot'"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant"}]}, "messages[1]: missing field 'content'"),
        ({"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": [{"type": "text"}]}]},
         "messages[1]: field 'content' must be a string, got a list"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "no assistant message to train on"),
        ({"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "Hi!"}]},
         "messages[1] answers before any user message"),
    ],
)
def test_invalid_records_name_the_field_and_the_problem(record, reason):
    with pytest.raises(InvalidRecord, match=None) as err:
        record_to_conversation(record)
    assert reason in str(err.value)


def test_the_message_for_an_unmapped_schema_names_the_mapped_fields():
    with pytest.raises(InvalidRecord, match="'dialog'.*map other names with data.fields"):
        record_to_conversation({"text": "x"}, {"messages": "dialog"})
