"""The chat template: how a conversation becomes one token sequence for an instruction-tuned model.

SmolLM2 uses ChatML:

    <|im_start|>system
    You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
    <|im_start|>user
    What is the capital of France?<|im_end|>
    <|im_start|>assistant

The template itself ships with the model as a jinja2 string, and is rendered in jinja2's
sandbox because it is code that came with a downloaded file. The sandbox stops it reaching
Python's internals, but not from looping or writing for ever, so rendering is also bounded: at
most RENDER_SECONDS of the template's own code (checked on each of its lines), at most
RENDER_CHARS of text, and no single step (a filter, a method, an operator) that would build
something larger (template_sandbox.py measures each before it runs). Control tokens
come only from the template: message text is tokenized as plain text, so a user who types
"<|im_end|>" cannot end their own turn.
"""

from __future__ import annotations

import re
import sys
import time

import jinja2

from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model.template_sandbox import RENDER_CHARS, BoundedSandbox, TemplateError

__all__ = ["RENDER_CHARS", "RENDER_SECONDS", "TemplateError", "chat_ids", "render"]

RENDER_SECONDS = 0.5  # of this thread's CPU time; a real template renders in about a millisecond
_TEMPLATE_FILE = "<template>"  # the file name jinja2 gives the code it compiles from a string


def _timer(deadline: float):
    """A trace function that follows only the template's own code and stops it at `deadline`
    (time.thread_time(): the CPU time of this thread, so other threads' work never stops a template)."""

    def line(frame, event, arg):
        if time.thread_time() > deadline:
            raise TemplateError(f"the chat template ran for more than {RENDER_SECONDS:g} s")
        return line

    def call(frame, event, arg):
        return line if frame.f_code.co_filename == _TEMPLATE_FILE else None

    return call

# A stand-in for each message while the template renders; it cannot occur in real text.
_SLOT = "\ue000{}\ue001"
_SLOT_RE = re.compile("\ue000(\\d+)\ue001")


def render(template: str, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The template's text with the messages filled in (what `apply_chat_template` returns).

    TemplateError if it is not a template, or runs past RENDER_SECONDS or RENDER_CHARS.
    """
    if not isinstance(template, str):
        raise TemplateError(f"the chat template is a {type(template).__name__}, not text")
    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True)
    try:
        compiled = env.from_string(template)
    except jinja2.TemplateError as e:
        raise TemplateError(f"the chat template does not parse: {str(e).splitlines()[0][:200]}") from None
    parts, size = [], 0
    previous = sys.gettrace()
    sys.settrace(_timer(time.thread_time() + RENDER_SECONDS))  # CPU time: a busy machine does not count
    try:
        for part in compiled.generate(messages=messages, add_generation_prompt=add_generation_prompt):
            size += len(part)
            if size > RENDER_CHARS:
                raise TemplateError(f"the chat template wrote more than {RENDER_CHARS:,} characters")
            parts.append(part)
    except TemplateError:
        raise
    except Exception as e:  # noqa: BLE001 - the template's own error (undefined name, sandbox refusal, ...)
        raise TemplateError(f"the chat template failed: {type(e).__name__}: {str(e)[:200]}") from None
    finally:
        sys.settrace(previous)
    return "".join(parts)


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
