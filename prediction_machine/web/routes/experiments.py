"""The "what if" experiments' API: ablate, scan, attribute, patch, and the shipped presets.

Thin on purpose: validate, call prediction_machine.experiments, serialize. Every answer is a
real re-run of the model. A prompt may be at most max_experiment_tokens tokens (after the chat
template, unless raw): the head scan reruns it once per head. The scan is a stream of `progress`
events, one `result` and the terminal `done`; it holds a place like a generation (one per client
in classroom mode, 429 when every place is taken) and stops within one layer's batch when its
client leaves.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from prediction_machine.experiments import ablation, attribution, head_scan, patching
from prediction_machine.jsonsafe import json_numbers
from prediction_machine.web.deps import language_model, settings
from prediction_machine.web.routes.inference import Prompt
from prediction_machine.web.streaming import SSE_RESPONSES, stream
from prediction_machine.web.validation import ModelName, Strict, unprocessable, within_limits

router = APIRouter(prefix="/api/experiments", tags=["experiments"])
PRESETS = "experiment_presets.json"  # in prediction_machine/data, measured on the shipped model

Index = Field(ge=0, le=1023, strict=True)


class PromptFields(Strict):
    prompt: Prompt
    raw: bool = Field(False, description="feed the prompt as it is; false wraps it in the chat template")
    model: ModelName = None


class AblateRequest(PromptFields):
    kind: Literal["head", "layer_attn", "mlp"] = Field(
        description="one attention head, all of a layer's heads, or a layer's MLP")
    layer: int = Index
    head: int | None = Field(None, ge=0, le=1023, strict=True, description="with kind 'head' only")


class AttributeRequest(PromptFields):
    token: int | None = Field(None, ge=0, le=10**6, strict=True,
                              description="the token whose logit is split (default: the top-1 next token)")


class PatchRequest(Strict):
    source: Prompt
    target: Prompt
    raw: bool = Field(False, description="feed both as they are; false wraps each in the chat template")
    model: ModelName = None


# ----------------------------------------------------------------------------- helpers


def experiment_ids(request: Request, lm, field: str, text: str, raw: bool) -> list[int]:
    """The prompt's ids, refused with a 422 naming the field and the limit when too long or empty."""
    ids = lm.prompt_ids(text, chat=not raw)
    cap = min(settings(request).max_experiment_tokens, lm.config.max_seq_len)
    if len(ids) > cap:
        raise unprocessable(field, f"is {len(ids)} tokens long; the limit for experiments is {cap}")
    if not ids:
        raise unprocessable(field, "has no tokens")
    return ids


def checked_part(req: AblateRequest, cfg) -> ablation.Part:
    """The part to switch off, or a 422 naming the field and this model's range."""
    if req.layer >= cfg.n_layers:
        raise unprocessable("layer", f"is {req.layer}; this model's layers are 0..{cfg.n_layers - 1}")
    if req.kind == "head" and req.head is None:
        raise unprocessable("head", f"kind 'head' needs a head in 0..{cfg.n_heads - 1}")
    if req.kind == "head" and req.head >= cfg.n_heads:
        raise unprocessable("head", f"is {req.head}; this model's heads are 0..{cfg.n_heads - 1}")
    if req.kind != "head" and req.head is not None:
        raise unprocessable("head", f"only kind 'head' takes a head; {req.kind!r} is the whole part")
    return ablation.Part(req.kind, req.layer, req.head).check(cfg)


# ----------------------------------------------------------------------------- routes


@router.post("/ablate", summary="Switch one part off (zero it) and compare the next-token tables")
def ablate(req: AblateRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = experiment_ids(request, lm, "prompt", req.prompt, req.raw)
    part = checked_part(req, lm.config)
    return json_numbers(ablation.ablate(lm, ids, part).to_json())


@router.post("/scan", responses=SSE_RESPONSES,
             summary="Switch off each head in turn: `progress` events, then a `result` with the L x H grid")
def scan(req: PromptFields, request: Request):
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = experiment_ids(request, lm, "prompt", req.prompt, req.raw)

    def work(should_stop):
        total = lm.config.n_layers
        for partial in head_scan.scan_steps(lm, ids):
            done = len(partial.prob_after)
            if done < total:
                yield "progress", {"done": done, "total": total}
            if should_stop():
                return  # the client left: no more batches
        yield "progress", {"done": total, "total": total}
        yield "result", json_numbers(partial.to_json())
        yield "done", {}  # every stream of this API ends with `done` or `error`

    return stream(request.app.state.slots, work)


@router.post("/attribute", summary="Split a token's logit into the embedding, each layer's heads and MLP")
def attribute(req: AttributeRequest, request: Request) -> dict:
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    ids = experiment_ids(request, lm, "prompt", req.prompt, req.raw)
    if req.token is not None and req.token >= lm.config.vocab_size:
        raise unprocessable("token", f"is {req.token}; this model's ids are 0..{lm.config.vocab_size - 1}")
    return json_numbers(attribution.attribute(lm, ids, token=req.token).to_json())


@router.post("/patch", summary="Copy the source's residual stream into the target's run at every "
                               "(layer, position): how much of the source's answer comes back")
def patch(req: PatchRequest, request: Request):
    within_limits(req, settings(request))
    lm = language_model(request, req.model)
    src = experiment_ids(request, lm, "source", req.source, req.raw)
    tgt = experiment_ids(request, lm, "target", req.target, req.raw)
    try:
        grid = patching.patch_grid(lm, src, tgt)
    except patching.Misaligned as e:
        return JSONResponse({"error": f"target: {e}", "source_tokens": e.source, "target_tokens": e.target},
                            status_code=422)
    return json_numbers(grid.to_json(lm.tokenizer))


@router.get("/presets", summary="The canonical examples, each with its result measured on the shipped model")
def presets() -> list:
    path = resources.files("prediction_machine") / "data" / PRESETS
    return json.loads(path.read_text()) if path.is_file() else []

