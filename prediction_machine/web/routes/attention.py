"""The attention explorer's API: which earlier tokens each token reads, from a real forward pass.

Thin on purpose: validate, call prediction_machine.training.attention, serialize.

Payload bound (documented in the OpenAPI schema too): one response carries at most
MAX_WEIGHTS attention weights, counting the selected maps in every requested view plus the
averages. The full 30 layers x 9 heads of a sentence fit up to about 24 tokens in both views;
for longer sentences ask for fewer layers or heads (the page then loads one layer at a time).
The all-heads grid is separate and fixed: L x H maps of at most GRID_SIZE x GRID_SIZE cells.
Text longer than ServerSettings.max_attention_tokens tokens is refused with a 422.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Request
from pydantic import AfterValidator, Field

from prediction_machine.jsonsafe import json_number as num
from prediction_machine.jsonsafe import json_numbers
from prediction_machine.training import attention, attention_heads
from prediction_machine.web.deps import language_model, settings
from prediction_machine.web.validation import (
    ModelName,
    Strict,
    no_surrogates,
    unprocessable,
    up_to,
    within_limits,
)

MAX_WEIGHTS = 400_000  # numbers in attention + word_attention + averages of one response
GRID_SIZE = 16  # the all-heads grid: each map is averaged down to at most this many rows and columns
DIGITS = 4  # weights are rounded to 4 decimals: a row then sums to 1 within T x 5e-5

router = APIRouter(prefix="/api/attention", tags=["attention"])

Index = Annotated[int, Field(ge=0, le=1023, strict=True)]


class BreakdownRequest(Strict):
    layer: Index
    head: Index
    query: Index = Field(description="token position of the query row (0-based)")


class AttentionRequest(Strict):
    text: Annotated[
        str,
        Field(min_length=1, json_schema_extra=up_to("max_prompt_chars"),
              description="plain text (no chat template); "
                          "at most max_attention_tokens tokens (GET /api/settings)"),
        AfterValidator(no_surrogates),
    ]
    layers: list[Index] | None = Field(None, max_length=1024, description="layers to return (default: all)")
    heads: list[Index] | None = Field(None, max_length=1024, description="heads to return (default: all)")
    view: Literal["token", "word", "both"] = Field(
        "token",
        description="token: weights as computed; "
                    "word: sub-tokens combined (sum over keys, mean over queries)",
    )
    grid: bool = Field(False,
                       description=f"also return every head as a small map (at most {GRID_SIZE}x{GRID_SIZE})")
    breakdown: BreakdownRequest | None = Field(
        None, description="also rebuild one query row of one head step by step")
    model: ModelName = None


# ----------------------------------------------------------------------------- helpers

def rounded(t: torch.Tensor, digits: int = DIGITS) -> list:
    """Nested lists of rounded floats (weights are in [0, 1], so never NaN or Infinity)."""
    return json_numbers(t.tolist(), digits)


def pick(request_list: list[int] | None, top: int, field: str) -> list[int]:
    if request_list is None:
        return list(range(top))
    if len(set(request_list)) != len(request_list):
        raise unprocessable(field, "lists an index twice")
    bad = [i for i in request_list if i >= top]
    if bad:
        raise unprocessable(field, f"{bad[0]} is out of range: this model has {top} ({field} 0..{top - 1})")
    return list(request_list)


def view_json(v: attention.View) -> dict:
    return {
        "maps": rounded(v.maps),  # [layer][head][query][key]
        "head_mean": rounded(v.head_mean),  # [layer][query][key]: mean over all heads
        "layer_mean": rounded(v.layer_mean),  # [head][query][key]: mean over all layers
        "mean": rounded(v.mean),  # [query][key]: mean over every layer and head
    }


def breakdown_json(b: attention.Breakdown) -> dict:
    return {
        "layer": b.layer, "head": b.head, "kv_head": b.kv_head, "query": b.query, "head_dim": b.head_dim,
        "scale": num(b.head_dim**0.5, 6),
        "keys": [
            {"position": k, "dot": num(d, 5), "scaled": num(s, 5), "allowed": a, "weight": num(w, 6),
             "traced": num(t, 6)}
            for k, (d, s, a, w, t) in enumerate(zip(b.dots, b.scaled, b.allowed, b.weights, b.traced,
                                                    strict=True))
        ],
        "max_abs_diff": b.max_abs_diff,
    }


# ----------------------------------------------------------------------------- routes


@router.post(
    "",
    summary="Tokens, words and the real model's attention weights for a sentence",
    description=(
        "Text of at most max_attention_tokens tokens (GET /api/settings). "
        f"One response holds at most {MAX_WEIGHTS:,} weights "
        "(selected maps in every requested view plus the averages); "
        "choose `layers` and `heads` to stay under it. "
        f"`grid` adds every head as a map of at most {GRID_SIZE}x{GRID_SIZE} (block averages, 3 decimals). "
        f"Weights are rounded to {DIGITS} decimals."
    ),
)
def attention_route(req: AttentionRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    cfg = lm.config
    layers = pick(req.layers, cfg.n_layers, "layers")
    heads = pick(req.heads, cfg.n_heads, "heads")
    tokens = lm.tokenizer.encode(req.text)
    limit = settings(request).max_attention_tokens
    if not tokens:
        raise unprocessable("text", "has no tokens")
    if len(tokens) > limit:
        raise unprocessable("text",
                            f"is {len(tokens)} tokens long; the attention explorer takes at most {limit}")
    words = attention.group_words(tokens)
    which = ["token", "word"] if req.view == "both" else [req.view]
    T, W = len(tokens), len(words)
    size = sum(n * n for n in ([T] if "token" in which else []) + ([W] if "word" in which else []))
    count = size * (len(layers) * len(heads) + len(layers) + len(heads) + 1)
    if count > MAX_WEIGHTS:
        raise unprocessable(
            "layers", f"this selection is {count:,} weights; one response holds at most {MAX_WEIGHTS:,}: "
            "ask for fewer layers or heads"
        )
    if req.breakdown is not None:
        b = req.breakdown
        ranges = (("layer", b.layer, cfg.n_layers), ("head", b.head, cfg.n_heads), ("query", b.query, T))
        for name, value, top in ranges:
            if value >= top:
                raise unprocessable(f"breakdown.{name}", f"{value} is out of range (0..{top - 1})")

    b = req.breakdown
    v = attention.views(lm, req.text, layers, heads, which, grid=GRID_SIZE if req.grid else None,
                        breakdown=None if b is None else (b.layer, b.head, b.query))
    out = {
        "model": lm.shown_name,
        "tokens": [t.to_dict() for t in tokens],
        "words": [{"text": w.text, "tokens": w.tokens, "start": w.start, "end": w.end} for w in words],
        "word_rule": "a word starts at a token that begins with a space or newline, or at punctuation; its "
                     "following sub-tokens join it. Word view: weights are summed over a word's key "
                     "sub-tokens and averaged over its query sub-tokens.",
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "layers": layers,
        "heads": heads,
        "view": req.view,
        "weights": count,
        "max_weights": MAX_WEIGHTS,
    }
    if v.token is not None:
        out["attention"] = view_json(v.token)
    if v.word is not None:
        out["word_attention"] = view_json(v.word)
    if v.grid is not None:
        out["grid"] = {"size": v.grid.shape[-1], "downsampled": T > GRID_SIZE, "maps": rounded(v.grid, 3)}
    if v.breakdown is not None:
        out["breakdown"] = breakdown_json(v.breakdown)
    return out


@router.get("/examples", summary="Example sentences and the heads measured as prominent on them")
def examples(request: Request) -> dict:
    lm = language_model(request)
    return {
        "model": lm.shown_name,
        "examples": attention.EXAMPLES,
        "prominent": [
            {"kind": p.kind, "layer": p.layer, "head": p.head, "score": num(p.score, 4),
             "baseline": num(p.baseline, 4), "caption": p.caption, "example": p.example,
             "query": p.query,
             "details": {k: num(v, 6) if isinstance(v, float) else v for k, v in p.details.items()}}
            for p in attention_heads.prominent_heads(lm)  # measured once per model, then remembered
        ],
        "measured_on": "all example sentences (the “it” head on the first one)",
    }
