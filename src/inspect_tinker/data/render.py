"""Render conversations with the model's chat template into token ids and a loss mask.

Only assistant tokens carry loss. Chat templates rarely mark assistant spans
(`{% generation %}`), so the spans are found by rendering growing prefixes of the
conversation as text: what a template adds for assistant turn i is exactly the text between
`render(messages[:i]) + generation prompt` and `render(messages[:i+1])`. The whole
conversation is then tokenized once, in batches, and a token is trained on when it starts
inside such a span (the tokenizer's offsets say where each token starts). Tokenizing once
instead of once per prefix halves the work for long prompts, and batches run in the
tokenizer's native threads.

A record far longer than `max_seq_length` is cut as text before it is tokenized: the
tokenizer's memory grows with the text (about 300 bytes per token: a 10 MB record took
3 GB), and only the first `max_seq_length` tokens are kept anyway. The cut is at
`text_limit` characters, which hold more than twice `max_seq_length` tokens whatever the
text (see `longest_token_chars`); only the tokens of the word the cut falls in can differ
from the whole text's, and they come after the first `max_seq_length` unless that one
word spans the whole limit (tens of thousands of characters without a space).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from inspect_tinker.data.records import Conversation

@dataclass(frozen=True)
class TokenizedExample:
    """Token ids of one conversation and a 0/1 weight per token (1 = trained on)."""

    input_ids: list[int]
    loss_mask: list[int]
    # Characters at the end of the rendered text that were cut off before tokenizing (see
    # `text_limit`); when above 0, the example is longer than the limit it was rendered for.
    untokenized_chars: int = 0

    @property
    def n_target_tokens(self) -> int:
        # Token t is predicted from tokens before it, so the first token is never a target.
        return sum(self.loss_mask[1:])


def render_conversation(
    tokenizer, conversation: Conversation, max_seq_length: int, train_on: str = "all_assistant_turns"
) -> TokenizedExample | None:
    """Token ids and assistant-only loss mask of `conversation`, cut to `max_seq_length`.

    Returns None when nothing trainable is left after cutting. Raises ValueError when the
    chat template does not render conversations prefix-stably (the mask would be wrong).
    """
    limit = text_limit(tokenizer, max_seq_length)
    return truncate(render_batch(tokenizer, [conversation], train_on, max_chars=limit)[0], max_seq_length)


def longest_token_chars(tokenizer) -> int:
    """The most characters of text one token of `tokenizer` can stand for.

    That is the longest string in its vocabulary: a byte-level BPE token (GPT-2, Llama 3,
    Qwen, SmolLM) is written with one character per byte, a SentencePiece token with one per
    character (its byte-fallback tokens such as `<0x0A>` are longer than the byte they stand
    for), so no token covers more characters of text than its own string has.
    """
    return max(len(token) for token in tokenizer.get_vocab())


def text_limit(tokenizer, max_tokens: int) -> int:
    """Characters of rendered text that always hold more than `max_tokens` tokens.

    (max_tokens + 1) tokens cover at most (max_tokens + 1) * longest_token_chars characters;
    twice that leaves room for a normaliser that drops characters (accents stripped) and
    for the word the cut falls in, whose tokens may differ from the uncut text's. For the
    bundled model (81 characters) and max_seq_length 512 that is 83 106 characters, a few MB
    to tokenize.
    """
    return 2 * (max_tokens + 1) * longest_token_chars(tokenizer)


def render_batch(
    tokenizer, conversations: list[Conversation], train_on: str = "all_assistant_turns", max_chars: int | None = None,
) -> list[TokenizedExample]:
    """Conversations as token ids, with loss on every assistant turn or only the last.

    Uncut, unless `max_chars` is given (`text_limit(tokenizer, max_seq_length)`): then a
    rendered text longer than that is cut there before tokenizing (its example keeps more than
    max_seq_length tokens, the whole text's, and says how many characters were not
    tokenized); shorter ones stay whole.
    Needs a fast (Rust) tokenizer, for the token offsets. Raises ValueError when the chat
    template does not render a conversation prefix-stably (it rewrites earlier turns).
    """
    rendered = [_text_and_spans(tokenizer, c, train_on) for c in conversations]
    texts = [text[:max_chars] for text, _ in rendered]
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    examples = []
    for ids, offsets, (whole, spans), text in zip(encoded["input_ids"], encoded["offset_mapping"], rendered, texts):
        starts = [start for start, _ in offsets]
        mask = [0] * len(ids)
        for span_start, span_end in spans:
            # Tokens starting inside the turn. A token that straddles its start (an answer
            # beginning with "\n" merges with the template's "\n") holds template text and
            # is not trained on.
            for t in range(bisect_left(starts, span_start), bisect_left(starts, span_end)):
                mask[t] = 1
        examples.append(TokenizedExample(list(ids), mask, untokenized_chars=len(whole) - len(text)))
    return examples


def _text_and_spans(tokenizer, conversation: Conversation, train_on: str) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation (up to its last answer) and the character spans of the trained answers.

    What the template adds for answer i is the text between `render(messages[:i])` plus the
    generation prompt and `render(messages[:i+1])`; that span is trained on only if the whole
    text starts with `render(messages[:i+1])`, i.e. the template writes answer i the same way
    later on. Templates that rewrite earlier answers (`qwen3` drops their think block) can
    therefore train on the last answer only.
    """
    assistant = [i for i, m in enumerate(conversation) if m["role"] == "assistant"]
    trained = assistant if train_on == "all_assistant_turns" else assistant[-1:]
    text = tokenizer.apply_chat_template(conversation[: assistant[-1] + 1], tokenize=False)
    spans = []
    for i in trained:
        prompt = tokenizer.apply_chat_template(conversation[:i], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(conversation[: i + 1], tokenize=False)
        if not (full.startswith(prompt) and text.startswith(full)):
            raise ValueError(
                "the chat template does not render this conversation prefix-stably (it rewrites an earlier "
                "answer); train on the last answer only (data.train_on: last_assistant_turn)"
            )
        spans.append((len(prompt), len(full)))
    return text, spans


def truncate(example: TokenizedExample, max_seq_length: int) -> TokenizedExample | None:
    """The example cut to `max_seq_length` tokens; None when no trained token is left."""
    if len(example.input_ids) > max_seq_length:
        example = TokenizedExample(example.input_ids[:max_seq_length], example.loss_mask[:max_seq_length])
    return example if example.n_target_tokens > 0 else None

