"""The inference walkthrough's API: tokenize, trace, preview the sampling distribution, generate.

Thin on purpose: validate, call the same Python functions the CLI uses, serialize.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, Field

from prediction_machine.engine import server_batcher
from prediction_machine.inference import walkthrough
from prediction_machine.inference.embedding import EmbeddingView
from prediction_machine.inference.prediction import Prediction
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.inference.tokenizer import StreamDecoder
from prediction_machine.inference.transformer_view import TransformerView
from prediction_machine.jsonsafe import json_number as num
from prediction_machine.jsonsafe import json_numbers
from prediction_machine.limits import NEW_TOKENS
from prediction_machine.web.deps import language_model, settings
from prediction_machine.web.streaming import SSE_RESPONSES, stream_pushed
from prediction_machine.web.validation import (
    ModelName,
    Strict,
    Temperature,
    no_surrogates,
    unprocessable,
    up_to,
    within_limits,
)

router = APIRouter(prefix="/api", tags=["inference"])
DEFAULT = SamplingParams()  # the library's defaults are the API's
MAX_TRACE_TOKENS = 256  # a trace returns every embedding: 256 x 576 numbers is about 1.5 MB of JSON

Prompt = Annotated[
    str,
    Field(min_length=1, json_schema_extra=up_to("max_prompt_chars"),
          description="the text typed by the user"),
    AfterValidator(no_surrogates),
]


class TokenizeRequest(Strict):
    text: Prompt
    chat: bool = Field(False, description="wrap the text in the model's chat template first")
    model: ModelName = None


class SamplingFields(Strict):
    temperature: Temperature = DEFAULT.temperature
    top_k: int = Field(DEFAULT.top_k, ge=0, le=1000, strict=True,
                       description="keep the k most likely tokens; 0 = off")
    top_p: float = Field(DEFAULT.top_p, gt=0, le=1, strict=True,
                         description="nucleus: keep the smallest set reaching p; 1 = off")
    min_p: float = Field(DEFAULT.min_p, ge=0, lt=1, strict=True,
                         description="drop tokens below min_p x the top probability; 0 = off")

    def params(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_k, self.top_p, self.min_p)


class TraceRequest(Strict):
    prompt: Prompt
    chat: bool = Field(True, description="wrap the prompt in the chat template")
    lens_k: int = Field(5, ge=1, le=20, strict=True, description="guesses per layer in the logit lens")
    neighbours: int = Field(5, ge=0, le=20, strict=True, description="nearest vocabulary entries per token")
    continuation: list[Annotated[int, Field(ge=0, le=10**6, strict=True)]] = Field(
        default_factory=list, max_length=MAX_TRACE_TOKENS,
        description="ids generated before the step shown, appended to the prompt: the tokens that step read",
    )
    target: int | None = Field(None, ge=0, le=10**6, strict=True,
                               description="the token that step chose, followed through the layers; "
                                           "default: the top guess")
    model: ModelName = None


class PreviewRequest(SamplingFields):
    prompt: Prompt
    chat: bool = True
    continuation: list[Annotated[int, Field(ge=0, le=10**6, strict=True)]] = Field(
        default_factory=list, json_schema_extra=up_to("max_new_tokens"),
        description="ids generated so far, appended to the prompt",
    )
    k: int = Field(10, ge=1, le=50, strict=True, description="rows of the table")
    seed: int | None = Field(None, ge=0, le=2**53, strict=True,
                             description="if set, also perform one seeded draw")
    draws_before: int = Field(0, ge=0, strict=True, json_schema_extra=up_to("max_new_tokens"),
                              description="random numbers this seed already gave "
                                          "(tokens generated with it so far)")
    model: ModelName = None


class GenerateRequest(SamplingFields):
    prompt: Prompt
    chat: bool = True
    continuation: list[Annotated[int, Field(ge=0, le=10**6, strict=True)]] = Field(
        default_factory=list, json_schema_extra=up_to("max_new_tokens"),
        description="ids already generated, appended to the prompt (Step and Play resume from here)",
    )
    max_new_tokens: int = Field(NEW_TOKENS, ge=1, strict=True, json_schema_extra=up_to("max_new_tokens"))
    seed: int | None = Field(None, ge=0, le=2**53, strict=True,
                             description="same seed + settings = same tokens (at most 2**53: exact in JSON)")
    top_n: int = Field(0, ge=0, le=20, strict=True,
                       description="rows of each step's top-N table (`prediction`); "
                                   "0 = no table (null), which is faster")
    model: ModelName = None


# -------------------------------------------------------------------- what the answers hold (OpenAPI only)

MODEL_PROB = "the model's own probability: softmax of the raw logits at temperature 1, no filters"
DRAW_PROB = ("the probability the draw used, after temperature, top-k, top-p and min-p "
             "(1 for the greedy choice)")


class PredictionRow(BaseModel):
    """One row of a top-N table."""

    id: int
    logit: float | None = Field(None, description="the model's raw score")
    scaled: float | None = Field(None, description="logit / temperature")
    model_prob: float | None = Field(None, description=MODEL_PROB)
    raw_prob: float | None = Field(None, description="the older name of model_prob, same value")
    prob: float | None = Field(None, description=DRAW_PROB)
    cumulative: float | None = Field(None, description="prob of this row and every row above it")


class PredictionTable(BaseModel):
    rows: list[PredictionRow]


class PredictionAnswer(BaseModel):
    """Answers holding a `prediction` table (/api/trace, /api/sample/preview)."""

    prediction: PredictionTable


class StepEvent(BaseModel):
    """The `data` of one `step` event of /api/generate's stream."""

    id: int = Field(description="the token chosen")
    prob: float | None = Field(None, description=DRAW_PROB)
    model_prob: float | None = Field(None, description=MODEL_PROB)
    prediction: PredictionTable | None = Field(None, description="the top-N table; null when top_n is 0")


TABLE_DOC = {200: {"model": PredictionAnswer}}
STEP_DOC = {**SSE_RESPONSES, 200: {**SSE_RESPONSES[200], "model": StepEvent}}


# ----------------------------------------------------------------------------- helpers


def prompt_ids(request: Request, lm, prompt: str, chat: bool, limit: int | None = None) -> list[int]:
    ids = lm.prompt_ids(prompt, chat=chat)
    cap = min(limit or settings(request).max_prompt_tokens, settings(request).max_prompt_tokens)
    if len(ids) > cap:
        raise unprocessable("prompt", f"is {len(ids)} tokens long; the limit here is {cap}")
    if not ids:
        raise unprocessable("prompt", "has no tokens")
    return ids


def continuation_ids(lm, ids: list[int]) -> list[int]:
    if any(i >= lm.config.vocab_size for i in ids):
        raise unprocessable("continuation", f"holds an id outside the vocabulary of {lm.config.vocab_size}")
    return list(ids)


def prediction_json(lm, p: Prediction) -> dict:
    return {
        "rows": [
            {
                "id": r.id,
                "token": lm.tokenizer.token(r.id).to_dict(),
                "logit": num(r.logit, 6),
                "scaled": num(r.scaled, 6),
                "raw_prob": num(r.model_prob, 8),  # the older name of model_prob, kept for the page
                "model_prob": num(r.model_prob, 8),
                "prob": num(r.prob, 8),
                "cumulative": num(r.cumulative, 8),
            }
            for r in p.rows
        ],
        "entropy_bits": num(p.entropy, 6),
        "model_entropy_bits": num(p.raw_entropy, 6),
        "mass_outside": num(p.mass_outside, 8),
        "candidates": p.candidates,
    }


def embedding_json(lm, e: EmbeddingView) -> dict:
    return {
        "dims": e.vectors.shape[1],
        "vectors": json_numbers(e.vectors.tolist(), 4),  # [token][dimension]
        "projection": {
            "explained": [num(v, 4) for v in e.explained],
            "points": [
                {
                    "id": p.id, "x": num(p.x, 4), "y": num(p.y, 4),
                    "neighbours": [
                        {"id": n.id, "token": lm.tokenizer.token(n.id).to_dict(),
                         "similarity": num(n.similarity, 4), "x": num(n.x, 4), "y": num(n.y, 4)}
                        for n in p.neighbours
                    ],
                }
                for p in e.points
            ],
        },
    }


def transformer_json(lm, v: TransformerView) -> dict:
    thumbs = v.thumbnails
    return {
        "lens": [
            {"layer": g.layer, "top": [
                {"id": i, "token": lm.tokenizer.token(i).to_dict(), "prob": num(p, 6)}
                for i, p in zip(g.ids, g.probs, strict=True)
            ]}
            for g in v.lens
        ],
        "chosen": {"id": v.chosen.id, "token": lm.tokenizer.token(v.chosen.id).to_dict(),
                   "probs": [num(p, 10) for p in v.chosen.probs], "ranks": v.chosen.ranks},  # one per layer
        # [layer][query][key], or a note saying why there are none
        "attention_thumbnails": None if thumbs is None else json_numbers(thumbs.tolist(), 4),
        "attention_thumbnails_note": (None if thumbs is not None
                                      else f"shown for prompts up to {v.max_thumbnail_tokens} tokens"),
    }


def model_json(lm) -> dict:
    """The model's facts; d_model, vocab_size, n_layers and n_heads carry ModelConfig's names."""
    return {**lm.describe(), "n_layers": lm.config.n_layers, "n_heads": lm.config.n_heads}


# ----------------------------------------------------------------------------- routes


@router.post("/tokenize", summary="Text to tokens (ids, display text, bytes, character offsets)")
def tokenize(req: TokenizeRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    tokens = [t.to_dict() for t in lm.tokenizer.encode(req.text)]
    out = {"tokens": tokens, "count": len(tokens), "model": lm.shown_name}
    if req.chat:
        ids = prompt_ids(request, lm, req.text, chat=True)
        out["chat"] = {"tokens": [lm.tokenizer.token(i).to_dict() for i in ids], "count": len(ids)}
    return out


@router.post("/trace", responses=TABLE_DOC,
             summary="One instrumented forward pass: the embedding, transformer and prediction stages")
def trace(req: TraceRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    prompt = prompt_ids(request, lm, req.prompt, req.chat, limit=MAX_TRACE_TOKENS)
    ids = prompt + continuation_ids(lm, req.continuation)
    if len(ids) > MAX_TRACE_TOKENS:
        raise unprocessable("continuation",
                            f"makes {len(ids)} tokens to trace; the limit is {MAX_TRACE_TOKENS}")
    if req.target is not None and req.target >= lm.config.vocab_size:
        raise unprocessable("target", f"is outside the vocabulary of {lm.config.vocab_size}")
    w = walkthrough.trace_prompt(lm.model, ids, lens_k=req.lens_k, neighbours=req.neighbours,
                                 target=req.target, tokenizer=lm.tokenizer, prompt=req.prompt,
                                 generated=len(req.continuation))
    return {
        "model": model_json(lm),
        "tokens": [lm.tokenizer.token(i).to_dict() for i in ids],
        "ms": num(w.ms, 2),
        # per token: "yours", "template" (added by the chat template) or "generated"
        "embedding": {**embedding_json(lm, w.embedding), "sources": w.sources},
        "transformer": transformer_json(lm, w.transformer),
        "prediction": prediction_json(lm, w.prediction),
    }


@router.post("/sample/preview", responses=TABLE_DOC,
             summary="The next-token distribution after temperature, top-k, top-p and min-p")
def sample_preview(req: PreviewRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = prompt_ids(request, lm, req.prompt, req.chat) + continuation_ids(lm, req.continuation)
    if len(ids) >= lm.config.max_seq_len:
        raise unprocessable("continuation",
                            f"makes the sequence longer than the context of {lm.config.max_seq_len}")
    params = req.params()
    p = walkthrough.preview(lm.model, ids, params, req.k, req.seed, req.draws_before)
    out = {"prediction": prediction_json(lm, p.prediction), "greedy": params.greedy}
    if p.draw is not None:
        d = p.draw
        out["draw"] = {"id": d.id, "token": lm.tokenizer.token(d.id).to_dict(), "u": d.u,
                       "cumulative_before": num(d.cumulative_before, 8), "prob": num(d.prob, 8)}
    return out


@router.post(
    "/generate",
    summary="Stream a generation as server-sent events: one `step` per token, then `done`",
    response_description="text/event-stream of `start`, `step`, `done` (or `error`) events",
    responses=STEP_DOC,
)
def generate_stream(req: GenerateRequest, request: Request):
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = prompt_ids(request, lm, req.prompt, req.chat) + continuation_ids(lm, req.continuation)
    if len(ids) + req.max_new_tokens > lm.config.max_seq_len:
        raise unprocessable(
            "max_new_tokens",
            f"prompt ({len(ids)} tokens) + max_new_tokens ({req.max_new_tokens}) "
            f"exceeds the context of {lm.config.max_seq_len}",
        )
    params = req.params()
    # Every stream joins one shared decode loop: concurrent students share each pass over the weights.
    batcher = server_batcher.batcher_for(lm.decoder, settings(request).max_running, limits=settings(request))

    def begin(feed):  # on the event loop, once a slot is ours: the decode loop pushes each Step into feed
        queued = batcher.submit(ids, params, req.max_new_tokens, lm.stop_ids, req.seed, req.top_n, out=feed)
        return queued.cancel

    return stream_pushed(request.app.state.slots, begin, GenerationEvents(lm, ids, req.top_n))


class GenerationEvents:
    """One generation's Steps as events (`start`, one `step` each, `done`), rendered on the event loop."""

    def __init__(self, lm, ids: list[int], top_n: int):
        self.lm, self.ids, self.top_n = lm, ids, top_n
        self.decoder = StreamDecoder(lm.tokenizer)
        self.t_start, self.out_ids, self.texts, self.finish = 0.0, [], [], "cancelled"

    def start(self):
        lm, self.t_start = self.lm, time.perf_counter()  # the clock starts when a slot is ours, as before
        prompt_tokens = [lm.tokenizer.token(i).to_dict() for i in self.ids]
        return "start", {"model": lm.describe(), "prompt_tokens": prompt_tokens}

    def item(self, step):
        lm = self.lm
        self.out_ids.append(step.id)
        piece = "" if step.id in lm.stop_ids else self.decoder.push(step.id)
        self.texts.append(piece)
        self.finish = step.finish or self.finish
        return "step", {
            "index": step.index,
            "id": step.id,
            "token": lm.tokenizer.token(step.id).to_dict(),
            "text": piece,
            "prob": num(step.prob, 8),
            "model_prob": num(step.model_prob, 8),
            "draw": {"u": step.draw.u, "cumulative_before": num(step.draw.cumulative_before, 8)},
            "prediction": (prediction_json(lm, step.prediction)
                           if self.top_n and step.prediction is not None else None),
            "cached": step.cached,
            "ms": num(step.ms, 2),
            "finish": step.finish,
        }

    def end(self):
        tail, elapsed, n = self.decoder.flush(), time.perf_counter() - self.t_start, len(self.out_ids)
        return "done", {
            "finish": self.finish,
            "ids": self.out_ids,
            "text": "".join(self.texts) + tail,
            "tokens": n,
            "seconds": num(elapsed, 3),
            "tokens_per_s": num(n / elapsed if elapsed > 0 else 0.0, 2),
        }
