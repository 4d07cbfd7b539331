"""Render conversations with the model's chat template into token ids and a loss mask.

Only assistant tokens carry loss. Chat templates rarely mark assistant spans
(`{% generation %}`), so the mask is found by rendering growing prefixes of the
conversation: the tokens a template adds for an assistant turn are exactly the tokens
between `render(messages[:i]) + generation prompt` and `render(messages[:i+1])`.
"""

from __future__ import annotations

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


def _ids(tokenizer, messages: Conversation, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def render_conversation(tokenizer, conversation: Conversation, max_seq_length: int) -> TokenizedExample | None:
    """Token ids and assistant-only loss mask of `conversation`, cut to `max_seq_length`.

    Returns None when nothing trainable is left after cutting. Raises ValueError when the
    chat template does not render conversations prefix-stably (the mask would be wrong).
    """
    input_ids: list[int] = []
    loss_mask: list[int] = []
    for i, message in enumerate(conversation):
        if message["role"] != "assistant":
            continue
        prompt = _ids(tokenizer, conversation[:i], add_generation_prompt=True)
        full = _ids(tokenizer, conversation[: i + 1], add_generation_prompt=False)
        if full[: len(prompt)] != prompt or prompt[: len(input_ids)] != input_ids:
            raise ValueError("the chat template does not render this conversation prefix-stably")
        loss_mask += [0] * (len(prompt) - len(input_ids)) + [1] * (len(full) - len(prompt))
        input_ids = full
    input_ids, loss_mask = input_ids[:max_seq_length], loss_mask[:max_seq_length]
    example = TokenizedExample(input_ids, loss_mask)
    return example if example.n_target_tokens > 0 else None
