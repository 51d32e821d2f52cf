"""What fine-tuning changed inside: one question, read by each stage of training side by side.

The stages are a base model and the models trained from it, in order: shipped, shakespeare-base
-> shakespeare-chat (supervised fine-tuning) -> shakespeare-dpo (preference tuning); or a
learner's own run and the run it started from. For the question, each stage gives:

  - its answer (greedy) and its probability for the answer's first token, the token the last
    stage puts first: how sure each stage is of the final answer's start;
  - the logit lens line of that token: its probability after each layer (tracing.py);
  - one chosen head's attention from the last prompt position back over the prompt;
and between each stage and the next, the relative change of every weight matrix
(weight_change.py), the heatmap.

Shape letters: L layers, H heads, T prompt tokens, V vocabulary.
"""

from __future__ import annotations

import torch

from prediction_machine.model.models import LanguageModel
from prediction_machine.model.tracing import lens_probs, token_path, trace
from prediction_machine.training.curriculum import finetune as ft
from prediction_machine.training.curriculum import weight_change

STAGES = ("shakespeare-base", "shakespeare-chat", "shakespeare-dpo")  # the shipped order
ANSWER_TOKENS = 24  # enough for the shipped answers ("Gertrude, the Queen of Denmark.")


def check_stages(lms: list[LanguageModel], names: list[str], question: str, layer: int, head: int) -> None:
    """ValueError naming the problem: stages that do not share a tokenizer and shape, a head or layer
    beyond the model, a question longer than the model reads."""
    first = lms[0]
    for name, lm in zip(names[1:], lms[1:], strict=True):
        if lm.tokenizer.json != first.tokenizer.json or lm.config != first.config:
            raise ValueError(f"stages: {name} was not trained from {names[0]} "
                             "(its vocabulary or shape differs)")
    cfg = first.config
    if not 0 <= layer < cfg.n_layers:
        raise ValueError(f"layer: is {layer}; these models' layers are 0..{cfg.n_layers - 1}")
    if not 0 <= head < cfg.n_heads:
        raise ValueError(f"head: is {head}; these models' heads are 0..{cfg.n_heads - 1}")
    if (problem := ft.question_fits(first.tokenizer, question, cfg.max_seq_len - ANSWER_TOKENS)) is not None:
        raise ValueError(f"question: {problem}")


@torch.no_grad()
def compare_stages(lms: list[LanguageModel], names: list[str], question: str, layer: int = 0,
                   head: int = 0, answer_tokens: int = ANSWER_TOKENS) -> dict:
    """Each stage's reading of one question, and the weight change from each stage to the next."""
    check_stages(lms, names, question, layer, head)
    tok = lms[0].tokenizer
    ids = ft.plain_chat_ids(tok, question)
    traces = [trace(lm.model, ids) for lm in lms]
    finals = [t.logits[-1].float().softmax(-1) for t in traces]  # each (V,)
    answer_id = int(finals[-1].argmax())  # the last stage's first answer token
    stages = []
    for name, lm, t, p in zip(names, lms, traces, finals, strict=True):
        lens = lens_probs(lm.model, t)  # (L, V)
        top = int(p.argmax())
        stages.append({
            "name": name,
            "answer": ft.answer(lm.model, tok, question, answer_tokens),
            "answer_token_prob": p[answer_id].item(),
            "top": {"token": tok.token(top).to_dict(), "prob": p[top].item()},
            "lens": token_path(lens, answer_id).probs,  # L numbers: the answer token after each layer
            "attention": t.attention[layer, head, -1].tolist(),  # (T,): the last position's row
        })
    changes = [
        weight_change.compare_states(a.model.state_dict(), b.model.state_dict(), a.config.n_layers,
                                     (na, nb)).to_dict()
        for (na, a), (nb, b) in zip(zip(names, lms, strict=True), zip(names[1:], lms[1:], strict=True),
                                    strict=False)
    ]
    return {"question": question, "prompt_tokens": [tok.token(i).to_dict() for i in ids],
            "answer_token": tok.token(answer_id).to_dict(), "layer": layer, "head": head,
            "layers": lms[0].config.n_layers, "heads": lms[0].config.n_heads,
            "stages": stages, "changes": changes}
