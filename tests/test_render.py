from evaltune.data import render_conversation
from evaltune.data.prepare import prepare_training_data
from evaltune.data.records import LoadedRecords


def trained_text(tokenizer, example):
    return tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if m])


def test_only_assistant_tokens_carry_loss(tokenizer):
    conversation = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "It is four."}]
    example = render_conversation(tokenizer, conversation, max_seq_length=512)
    assert trained_text(tokenizer, example).startswith("It is four.<|im_end|>")
    untrained = tokenizer.decode([t for t, m in zip(example.input_ids, example.loss_mask) if not m])
    assert "What is 2+2?" in untrained and "four" not in untrained
    # The ids are exactly the chat template's rendering of the whole conversation.
    assert example.input_ids == list(tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"])


def test_every_assistant_turn_of_a_multi_turn_conversation_is_trained(tokenizer):
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "Second question"},
        {"role": "assistant", "content": "Second answer"},
    ]
    text = trained_text(tokenizer, render_conversation(tokenizer, conversation, 512))
    assert "First answer" in text and "Second answer" in text
    assert "question" not in text and "Be brief" not in text


def test_long_examples_are_cut_and_examples_left_without_targets_are_dropped(tokenizer):
    long_answer = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "word " * 200}]
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "A"}]
    cut = render_conversation(tokenizer, long_answer, max_seq_length=64)
    assert len(cut.input_ids) == 64 and cut.n_target_tokens > 0
    assert render_conversation(tokenizer, long_prompt, max_seq_length=64) is None

    examples, report = prepare_training_data(LoadedRecords("f", [long_answer, long_prompt]), tokenizer, 64)
    assert len(examples) == 1
    assert (report.truncated, report.dropped_too_long, report.examples) == (1, 1, 1)
