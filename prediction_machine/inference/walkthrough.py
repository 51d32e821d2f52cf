"""The inference walkthrough's two questions, answered from the model in one call each.

- `trace_prompt(model, ids)`: one traced forward pass, and what stages 2-4 of the page show
  of it: the embedding, the transformer (logit lens, attention), the prediction.
- `preview(model, ids, params)`: the next-token table under sampling settings, and one
  seeded draw. The page asks this on every slider move, so the logits of the last few
  sequences are remembered.

Both are what /api/trace and /api/sample/preview return, before serialization.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from prediction_machine.inference import embedding, transformer_view
from prediction_machine.inference.prediction import Prediction, predict
from prediction_machine.inference.sampling import Draw, SamplingParams, distribution, draw, make_generator
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


def trace_prompt(model: Transformer, ids: list[int], lens_k: int = 5, neighbours: int = 5,
                 rows: int = 10, max_thumbnail_tokens: int = transformer_view.MAX_THUMBNAIL_TOKENS) -> Walkthrough:
    """Trace one pass over `ids` and describe each stage the page draws from it."""
    t0 = time.perf_counter()
    t = tracing.trace(model, ids)
    ms = (time.perf_counter() - t0) * 1000
    return Walkthrough(
        trace=t,
        ms=ms,
        embedding=embedding.describe(model.embed.weight, ids, t.embeddings, neighbours),
        transformer=transformer_view.describe(model, t, lens_k, max_thumbnail_tokens),
        prediction=predict(t.logits[-1], SamplingParams(temperature=1.0), rows),
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


def preview(model: Transformer, ids: list[int], params: SamplingParams, k: int = 10, seed: int | None = None) -> Preview:
    """What the next draw would use with these settings (and, given a seed, what it would pick)."""
    logits = next_logits(model, ids)
    probs = distribution(logits, params)  # (V,), once for the table and the draw
    d = draw(probs, None if params.greedy else make_generator(seed)) if seed is not None else None
    return Preview(predict(logits, params, k, probs), d)
