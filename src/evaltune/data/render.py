"""Render conversations with the model's chat template into token ids and a loss mask.

Only assistant tokens carry loss. Chat templates rarely mark assistant spans
(`{% generation %}`), so the spans are found by rendering growing prefixes of the
conversation as text: what a template adds for assistant turn i is exactly the text between
`render(messages[:i]) + generation prompt` and `render(messages[:i+1])`. The whole
conversation is then tokenized once, in batches, and a token is trained on when it starts
inside such a span (the tokenizer's offsets say where each token starts). Tokenizing once
instead of once per prefix halves the work for long prompts, and batches run in the
tokenizer's native threads.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from evaltune.data.records import Conversation

@dataclass(frozen=True)
class TokenizedExample:
    """Token ids of one conversation and a 0/1 weight per token (1 = trained on)."""

    input_ids: list[int]
    loss_mask: list[int]

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
    return truncate(render_batch(tokenizer, [conversation], train_on)[0], max_seq_length)


def render_batch(tokenizer, conversations: list[Conversation], train_on: str = "all_assistant_turns") -> list[TokenizedExample]:
    """Whole conversations (uncut) as token ids, with loss on every assistant turn or only the last.

    Needs a fast (Rust) tokenizer, for the token offsets. Raises ValueError when the chat
    template does not render a conversation prefix-stably (it rewrites earlier turns).
    """
    rendered = [_text_and_spans(tokenizer, c, train_on) for c in conversations]
    encoded = tokenizer(
        [text for text, _ in rendered], add_special_tokens=False, return_offsets_mapping=True
    )
    examples = []
    for ids, offsets, (_, spans) in zip(encoded["input_ids"], encoded["offset_mapping"], rendered):
        starts = [start for start, _ in offsets]
        mask = [0] * len(ids)
        for span_start, span_end in spans:
            # Tokens starting inside the turn. A token that straddles its start (an answer
            # beginning with "\n" merges with the template's "\n") holds template text and
            # is not trained on.
            for t in range(bisect_left(starts, span_start), bisect_left(starts, span_end)):
                mask[t] = 1
        examples.append(TokenizedExample(list(ids), mask))
    return examples


def _text_and_spans(tokenizer, conversation: Conversation, train_on: str) -> tuple[str, list[tuple[int, int]]]:
    last_assistant = max(i for i, m in enumerate(conversation) if m["role"] == "assistant")
    text, spans = "", []
    for i, message in enumerate(conversation[: last_assistant + 1]):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(conversation[:i], add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(conversation[: i + 1], add_generation_prompt=False, tokenize=False)
        if not (full.startswith(prompt) and prompt.startswith(text)):
            raise ValueError("the chat template does not render this conversation prefix-stably")
        if train_on == "all_assistant_turns" or i == last_assistant:
            spans.append((len(prompt), len(full)))
        text = full
    return text, spans


def truncate(example: TokenizedExample, max_seq_length: int) -> TokenizedExample | None:
    """The example cut to `max_seq_length` tokens; None when no trained token is left."""
    if len(example.input_ids) > max_seq_length:
        example = TokenizedExample(example.input_ids[:max_seq_length], example.loss_mask[:max_seq_length])
    return example if example.n_target_tokens > 0 else None
