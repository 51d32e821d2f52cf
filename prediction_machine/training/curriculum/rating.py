"""You are the human: where the preference pairs come from.

RLHF and DPO start from people comparing answers. This module is that step, run by the learner:

1. `sample_pair`: the chat model writes two answers to one prompt (sampled, two seeds);
2. the learner picks the better one, or writes a better answer (the page does this);
3. `learner_dpo`: a short DPO run on those choices (dpo.dpo), measured before and after on the
   rated prompts and on prompts the learner did not rate (UNRATED), with the probability of
   every token of the preferred answers side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import torch

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import dpo, preferences
from prediction_machine.training.curriculum.finetune import answer, plain_chat_ids
from prediction_machine.training.curriculum.loop import Event

# Prompts the learner is offered to rate (the page lets them type their own too).
PROMPTS = ("Who is Hamlet's mother?", "How do I kill a Python process?",
           "Who won the football World Cup in 1998?",
           "How do I make a bomb?", "Where is Macbeth set?", "What poison kills Hamlet's father?")
# Measured before and after but never rated: does a handful of choices carry over to other prompts?
UNRATED = (("Who is Juliet's father?", "Lord Capulet."),
           ("How do I crack an egg?", "Happy to help: tap it on the edge of a bowl."),
           ("How do I steal a car?", "I cannot help with stealing."))
# The learner's short run: every pair in every step, few steps, a larger step size than the shipped recipe;
# the project's held-out pairs are measured at the start and the end only, to keep it to seconds.
LEARNER = replace(dpo.RECIPE, steps=12, lr=5e-4, eval_every=12)
ANSWER_TOKENS = 40  # the longest answer drawn to rate; one that reaches it is cut short


def sample_answer(model: Transformer, tok: Tokenizer, prompt: str, seed: int, temperature: float = 1.0,
                  max_new_tokens: int = ANSWER_TOKENS) -> tuple[str, bool]:
    """One sampled answer (seeded, so the same seed gives the same answer), stopping at the end marker,
    and whether it was cut: it ran out of tokens before the model ended it."""
    ids = plain_chat_ids(tok, prompt)[-(model.cfg.max_seq_len - max_new_tokens):]
    end = tok.special_id("<|end|>")
    out = [s.id for s in generate(model, ids, SamplingParams(temperature=temperature), max_new_tokens, {end},
                                  seed=seed, top_n=0)]
    cut = end not in out and len(out) == max_new_tokens
    return tok.decode([i for i in out if i != end]).strip(), cut


def sample_pair(model: Transformer, tok: Tokenizer, prompt: str, seed: int = 0,
                temperature: float = 1.0) -> dict:
    """Two different answers to rate (up to eight draws to find a second one that differs).

    The answers are the text exactly as drawn, since a rated pair trains on it; `cut` says, for each,
    whether it was cut at ANSWER_TOKENS, so a page can mark it ("…") without changing the text."""
    a, cut_a = sample_answer(model, tok, prompt, seed, temperature)
    b, cut_b = a, cut_a
    for k in range(1, 9):
        b, cut_b = sample_answer(model, tok, prompt, seed + 1000 * k, temperature)
        if b != a:
            break
    return {"prompt": prompt, "answers": [a, b], "cut": [cut_a, cut_b], "seed": seed,
            "temperature": temperature}


def learner_dpo(
    sft_folder: Path,
    folder: Path,
    rows: list[dict],
    cfg: dpo.DPOConfig = LEARNER,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
    sft_name: str | None = None,
) -> Iterator[Event]:
    """DPO on the learner's own choices ({prompt, chosen, rejected}), checked by preferences.learner_pairs."""
    pairs = preferences.learner_pairs(rows)
    probes = [{"prompt": p.prompt, "answer": p.chosen, "rated": True} for p in pairs]
    probes += [{"prompt": q, "answer": a, "rated": False} for q, a in UNRATED]
    held = preferences.split("eval")
    yield from dpo.dpo(cfg, sft_folder, folder, pairs, held, probes, should_stop, should_pause, sft_name)


@torch.no_grad()
def three_stages(stages: list[tuple[str, Transformer]], tok: Tokenizer, question: str) -> dict:
    """The same prompt to each stage (base, fine-tuned, preference-tuned): its greedy answer, and its
    most likely first answer token with that token's probability."""
    ids = plain_chat_ids(tok, question)
    out = []
    for label, model in stages:
        logits, _ = model(torch.tensor([ids]), last_only=True)  # (1, 1, V)
        p = logits[0, -1].softmax(-1)  # (V,)
        top = int(p.argmax())
        out.append({"label": label, "answer": answer(model, tok, question),
                    "top": {"token": tok.token(top).to_dict(), "prob": p[top].item()}})
    return {"question": question, "models": out}
