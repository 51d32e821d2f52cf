"""The chat template: how a conversation becomes one token sequence for an instruction-tuned model.

SmolLM2 uses ChatML:

    <|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    What is the capital of France?<|im_end|>
    <|im_start|>assistant

The template itself ships with the model as a jinja2 string, and is rendered in jinja2's
sandbox because it is code that came with a downloaded file. Control tokens come only from
the template: message text is tokenized as plain text, so a user who types "<|im_end|>"
cannot end their own turn.
"""

from __future__ import annotations

import re

from jinja2.sandbox import ImmutableSandboxedEnvironment

from prediction_machine.inference.tokenizer import Tokenizer

# A stand-in for each message while the template renders; it cannot occur in real text.
_SLOT = "\ue000{}\ue001"
_SLOT_RE = re.compile("\ue000(\\d+)\ue001")


def render(template: str, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The template's text with the messages filled in (what `apply_chat_template` returns)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt)


def chat_ids(tokenizer: Tokenizer, template: str, messages: list[dict],
             add_generation_prompt=True) -> list[int]:
    """Token ids of a conversation: template text may hold control tokens, message text never does."""
    slotted = [{**m, "content": _SLOT.format(i)} for i, m in enumerate(messages)]
    text = render(template, slotted, add_generation_prompt)
    specials = sorted((tokenizer._tk.id_to_token(i) for i in tokenizer.special_ids), key=len, reverse=True)
    special_re = re.compile("(" + "|".join(re.escape(s) for s in specials) + ")") if specials else None
    ids: list[int] = []
    for part in special_re.split(text) if special_re else [text]:
        if not part:
            continue
        if part in specials:
            ids.append(tokenizer.special_id(part))
            continue
        # Put the real message text back in place of its slot, still as plain text.
        plain = _SLOT_RE.sub(lambda m: messages[int(m.group(1))]["content"], part)
        ids.extend(tokenizer.encode_ids(plain))
    return ids
