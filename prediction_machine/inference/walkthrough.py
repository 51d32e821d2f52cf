"""The inference walkthrough's two questions, answered from the model in one call each.

- `trace_prompt(model, ids)`: one traced forward pass, and what stages 2-4 of the page show
  of it: the embedding, the transformer (logit lens, attention), the prediction.
- `preview(model, ids, params)`: the next-token table under sampling settings, and one
  seeded draw. The page asks this on every slider move, so the logits of the last few
  sequences are remembered.
- `token_sources(tokenizer, ids, prompt)`: which of the ids are the learner's own text and
  which the chat template added, so the page can label the first and tuck the rest away.

The first two are what /api/trace and /api/sample/preview return, before serialization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from prediction_machine.inference import embedding, transformer_view
from prediction_machine.inference.prediction import Prediction, predict
from prediction_machine.inference.sampling import Draw, SamplingParams, distribution, draw, make_generator
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.memo import Memo
from prediction_machine.model import tracing
from prediction_machine.model.transformer import Transformer


@dataclass(frozen=True)
class Walkthrough:
    trace: tracing.Trace  # the forward pass itself
    ms: float  # how long the traced pass took
    embedding: embedding.EmbeddingView
    transformer: transformer_view.TransformerView
    prediction: Prediction  # the next token after the prompt, at temperature 1 with no filters
    sources: list[str]  # per token: "yours", "template" or "generated" (see token_sources)


def trace_prompt(model: Transformer, ids: list[int], lens_k: int = 5, neighbours: int = 5,
                 rows: int = 10, max_thumbnail_tokens: int = transformer_view.MAX_THUMBNAIL_TOKENS,
                 target: int | None = None, tokenizer: Tokenizer | None = None, prompt: str = "",
                 generated: int = 0) -> Walkthrough:
    """Trace one pass over `ids` and describe each stage the page draws from it.

    For one step of a generation, `ids` are the tokens that step read (prompt + tokens so far)
    and `target` the token it chose; the transformer stage follows that token through the layers.
    The last `generated` ids are the model's own; given the tokenizer and the prompt's text, the
    rest are told apart into the learner's and the template's.
    """
    t0 = time.perf_counter()
    t = tracing.trace(model, ids)
    ms = (time.perf_counter() - t0) * 1000
    return Walkthrough(
        trace=t,
        ms=ms,
        embedding=embedding.describe(model.embed.weight, ids, t.embeddings, neighbours),
        transformer=transformer_view.describe(model, t, lens_k, max_thumbnail_tokens, target),
        prediction=predict(t.logits[-1], SamplingParams(temperature=1.0), rows),
        sources=(token_sources(tokenizer, ids[: len(ids) - generated], prompt) if tokenizer else
                 ["yours"] * (len(ids) - generated)) + ["generated"] * generated,
    )


# ----------------------------------------------------------------------------- the sampling preview

_logits = Memo(size=16)  # the sliders re-ask for the same sequence many times


@torch.inference_mode()
def next_logits(model: Transformer, ids: list[int]) -> torch.Tensor:
    """The next-token logits (V,) after `ids`, remembered for the last few sequences."""

    def compute() -> torch.Tensor:
        logits, _ = model(torch.tensor([ids]), last_only=True)  # (1, 1, V)
        return logits[0, -1]

    return _logits.get(model, tuple(ids), compute)


@dataclass(frozen=True)
class Preview:
    prediction: Prediction  # the top rows under the sampling settings
    draw: Draw | None  # one seeded draw, if a seed was given


def preview(model: Transformer, ids: list[int], params: SamplingParams, k: int = 10, seed: int | None = None,
            draws_before: int = 0) -> Preview:
    """What the next draw would use with these settings (and, given a seed, what it would pick).

    `draws_before` random numbers are taken from the seeded generator first: the draws a
    generation with this seed already made. The preview then shows the very number that the
    next step of that same generation will use (one uniform per non-greedy draw, see sampling.draw).
    """
    logits = next_logits(model, ids)
    probs = distribution(logits, params)  # (V,), once for the table and the draw
    d = None
    if seed is not None:
        gen = None if params.greedy else make_generator(seed)
        for _ in range(draws_before if gen is not None else 0):
            torch.rand((), generator=gen, dtype=torch.float64)  # the same call, one at a time, as draw()
        d = draw(probs, gen)
    return Preview(predict(logits, params, k, probs), d)


# ----------------------------------------------------------------------------- whose tokens are whose


def token_sources(tokenizer: Tokenizer, ids: list[int], prompt: str) -> list[str]:
    """For each id, "yours" if it spells part of the learner's prompt, else "template".

    Found by bytes, not by re-encoding: inside the template a prompt's first token can merge
    with the text before it. The learner's text is the last place the prompt's bytes occur.
    Example: the ids of "<|im_start|>user\\nHi<|im_end|>" -> template, template, template, yours, template.
    """
    pieces = [tokenizer.token_bytes(i) for i in ids]
    text, wanted = b"".join(pieces), prompt.encode("utf-8")
    start = text.rfind(wanted) if wanted else -1
    if start < 0:
        return ["template"] * len(ids)
    end, out, pos = start + len(wanted), [], 0
    for piece in pieces:
        lo, hi = pos, pos + len(piece)
        out.append("yours" if hi > start and lo < end and piece else "template")
        pos = hi
    return out
