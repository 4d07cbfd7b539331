import json

from inspect_tinker.data.prepare import check_training_records, prepare_training_data
from inspect_tinker.data.render import render_batch, render_conversation, text_limit, truncate
from inspect_tinker.data.settings import DataConfig


def trained_text(tokenizer, example):
    return tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if m])


MULTI_TURN = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "First question"},
    {"role": "assistant", "content": "First answer"},
    {"role": "user", "content": "Second question"},
    {"role": "assistant", "content": "Second answer"},
]


def test_only_assistant_tokens_carry_loss(tokenizer):
    conversation = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "It is four."}]
    example = render_conversation(tokenizer, conversation, max_seq_length=512)
    assert trained_text(tokenizer, example).startswith("It is four.<|im_end|>")
    untrained = tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if not m])
    assert "What is 2+2?" in untrained and "four" not in untrained
    # The ids are exactly the chat template's rendering of the whole conversation.
    assert example.input_ids == list(tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"])


def test_every_assistant_turn_of_a_multi_turn_conversation_is_trained(tokenizer):
    text = trained_text(tokenizer, render_conversation(tokenizer, MULTI_TURN, 512))
    assert "First answer" in text and "Second answer" in text
    assert "question" not in text and "Be brief" not in text


def test_only_the_last_assistant_turn_is_trained_when_configured(tokenizer):
    example = render_conversation(tokenizer, MULTI_TURN, 512, train_on="last_assistant_turn")
    text = trained_text(tokenizer, example)
    assert "Second answer" in text and "First answer" not in text
    assert example.input_ids == render_conversation(tokenizer, MULTI_TURN, 512).input_ids


def test_an_answer_starting_with_newlines_or_unicode_renders_without_error(tokenizer):
    odd = [
        [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "\n\nAnswer after blank lines"}],
        [{"role": "user", "content": "Ünïcödé 日本語 😀?"}, {"role": "assistant", "content": "  日本語 😀 — yes "}],
    ]
    for conversation, example in zip(odd, render_batch(tokenizer, odd)):
        assert conversation[-1]["content"].strip() in trained_text(tokenizer, example)
        assert conversation[0]["content"] not in trained_text(tokenizer, example)


def test_long_examples_are_cut_and_examples_left_without_targets_are_dropped(tokenizer):
    long_answer = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "word " * 200}]
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "A"}]
    cut = render_conversation(tokenizer, long_answer, max_seq_length=64)
    assert len(cut.input_ids) == 64 and cut.n_target_tokens > 0
    assert render_conversation(tokenizer, long_prompt, max_seq_length=64) is None


def prepared(tmp_path, tokenizer, records, max_seq_length=64, **settings):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = DataConfig(**settings)
    return prepare_training_data(check_training_records(path, data, []), tokenizer, max_seq_length, data)


LENGTHS = [
    {"instruction": "Q", "output": "word " * 200},    # too long, truncated
    {"instruction": "word " * 200, "output": "A"},    # too long, nothing left after cutting
    {"instruction": "Q", "output": "A short answer."},
]


def test_token_length_checks_truncate_or_drop_and_are_reported(tmp_path, tokenizer):
    examples, report = prepared(tmp_path, tokenizer, LENGTHS)
    assert len(examples) == report.examples == 2 and report.truncated == 1
    assert report.dropped["too_long"] == 1
    assert [d["where"] for d in report.dropped_records] == ["line 2"]
    assert "nothing left to train on" in report.dropped_records[0]["detail"]
    assert report.token_lengths["max"] > 200 and report.token_lengths["min"] < 64
    assert report.total_tokens == sum(len(e.input_ids) for e in examples) <= 128

    examples, report = prepared(tmp_path, tokenizer, LENGTHS, too_long="drop")
    assert report.examples == 1 and report.dropped["too_long"] == 2 and report.truncated == 0

    examples, report = prepared(tmp_path, tokenizer, LENGTHS, max_seq_length=512, min_target_tokens=5)
    assert report.dropped["too_short"] == 1 and report.dropped_records[0]["where"] == "line 2"


def test_the_end_of_turn_tokens_are_what_the_template_writes_after_an_answer_and_eos(tokenizer):
    from copy import deepcopy

    from inspect_tinker.data.renderers import use_renderer

    # SmolLM2 ends a turn with <|im_end|>, which is also its EOS token.
    own = deepcopy(tokenizer)
    assert use_renderer(own, "tokenizer", "x").stop_tokens == (tokenizer.convert_tokens_to_ids("<|im_end|>"),)
    # A template ending turns with another special token (as Llama 3's <|eot_id|> does) adds it.
    other = deepcopy(tokenizer)
    other.chat_template = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|endoftext|>\n{% endfor %}"
    assert use_renderer(other, "tokenizer", "x").stop_tokens == tuple(sorted(
        {tokenizer.convert_tokens_to_ids("<|endoftext|>"), tokenizer.eos_token_id}
    ))


def test_a_text_far_longer_than_max_seq_length_is_cut_before_tokenizing_to_the_same_tokens(tokenizer):
    # 120 000 characters, over ten times the limit for 64 tokens (2 * 65 * 81 = 10 530).
    conversation = [{"role": "user", "content": "Tell it all."}, {"role": "assistant", "content": "word " * 24_000}]
    whole = render_batch(tokenizer, [conversation])[0]
    cut = render_batch(tokenizer, [conversation], max_chars=text_limit(tokenizer, 64))[0]
    assert whole.untokenized_chars == 0 and len(whole.input_ids) > 20_000
    assert cut.untokenized_chars > 100_000 and 64 < len(cut.input_ids) < 5_000
    assert truncate(cut, 64) == truncate(whole, 64)
    # A text within the limit is tokenized whole.
    short = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "word " * 100}]
    assert len("word " * 100) < text_limit(tokenizer, 64)
    assert render_batch(tokenizer, [short], max_chars=text_limit(tokenizer, 64)) == render_batch(tokenizer, [short])


def test_a_record_cut_before_tokenizing_is_reported_as_too_long_with_its_line(tmp_path, tokenizer):
    records = [{"instruction": "Q", "output": "A short answer."}, {"instruction": "Q?", "output": "word " * 24_000}]
    examples, report = prepared(tmp_path, tokenizer, records, too_long="drop")
    assert report.examples == 1 and report.dropped["too_long"] == 1
    (dropped,) = report.dropped_records
    assert dropped["where"] == "line 2" and dropped["reason"] == "too_long"
    assert "characters were not tokenized" in dropped["detail"] and "longer than max_seq_length 64" in dropped["detail"]
    examples, report = prepared(tmp_path, tokenizer, records)
    assert report.truncated == 1 and [len(e.input_ids) for e in examples][1] == 64
