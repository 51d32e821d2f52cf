"""The page's API answers, computed in the kernel: the very JSON the page's figures read.

A figure in a notebook is drawn by the page's own JS, so it needs the page's JSON shapes. Those are
written once, in web/routes/; here the route functions are called directly, in-process, with the
notebook's model standing in for the server's (a route's Request is only asked for its settings and
its model). Nothing is served and nothing is re-serialized here: one shape, one place.

The notebook therefore needs web/ (like `serve`); the library and the CLI do not.
"""

from __future__ import annotations

from types import SimpleNamespace

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

import prediction_machine.web.routes.attention as attention_routes
import prediction_machine.web.routes.experiments as experiment_routes
import prediction_machine.web.routes.inference as inference_routes
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.models import LanguageModel
from prediction_machine.web.settings import ServerSettings


def _request(lm: LanguageModel) -> SimpleNamespace:
    """What a route reads from its Request: the server's settings, whose model is this notebook's."""
    settings = ServerSettings(model=lm.name)
    return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)))


def _ask(route, req, lm: LanguageModel) -> dict:
    """A route's answer. What the page would get as a 422 (a prompt too long, a head out of range) is a
    ValueError here, with the same message naming the field and the limit."""
    try:
        return route(req, _request(lm))
    except (HTTPException, RequestValidationError) as e:
        raise _refusal(e) from None


def _refusal(e: HTTPException | RequestValidationError) -> ValueError:
    if isinstance(e, HTTPException):
        return ValueError(e.detail)
    return ValueError("; ".join(f"{err['loc'][-1]}: {err['msg']}" for err in e.errors()))


def tokenize(lm: LanguageModel, text: str, chat: bool) -> dict:
    """POST /api/tokenize."""
    return _ask(inference_routes.tokenize, inference_routes.TokenizeRequest(text=text, chat=chat), lm)


def trace(lm: LanguageModel, prompt: str, chat: bool, continuation: list[int] | None = None,
          target: int | None = None) -> dict:
    """POST /api/trace: the embedding, transformer and prediction stages of one traced pass."""
    req = inference_routes.TraceRequest(prompt=prompt, chat=chat, continuation=continuation or [],
                                        target=target)
    return _ask(inference_routes.trace, req, lm)


def preview(lm: LanguageModel, prompt: str, chat: bool, params: SamplingParams, seed: int | None,
            k: int) -> dict:
    """POST /api/sample/preview: the next-token table under `params`, and one seeded draw."""
    req = inference_routes.PreviewRequest(prompt=prompt, chat=chat, k=k, seed=seed,
                                          temperature=params.temperature, top_k=params.top_k,
                                          top_p=params.top_p, min_p=params.min_p)
    return _ask(inference_routes.sample_preview, req, lm)


def generation(lm: LanguageModel, prompt: str, chat: bool, params: SamplingParams, max_new_tokens: int,
               seed: int | None, top_n: int) -> dict:
    """POST /api/generate's events: `start`, one `step` per token (as the page records it), `done`.

    The page's server runs the batched decode loop; here the textbook loop runs, which the tests hold
    equal to it. Each step carries the settings and seed that drew it, as the page's record does.
    """
    req = inference_routes.GenerateRequest(prompt=prompt, chat=chat, max_new_tokens=max_new_tokens,
                                           seed=seed, top_n=top_n, temperature=params.temperature,
                                           top_k=params.top_k, top_p=params.top_p, min_p=params.min_p)
    try:
        inference_routes.within_limits(req, _request(lm).app.state.settings)
        ids = inference_routes.prompt_ids(_request(lm), lm, req.prompt, req.chat)
    except (HTTPException, RequestValidationError) as e:
        raise _refusal(e) from None
    events = inference_routes.GenerationEvents(lm, ids, req.top_n)
    _, start = events.start()
    settings = {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
                "min_p": params.min_p}
    steps = []
    for step in generate(lm.model, ids, req.params(), req.max_new_tokens, lm.stop_ids, seed, req.top_n):
        _, data = events.item(step)
        dice = None if params.greedy or seed is None else {"seed": seed, "number": step.index + 1}
        steps.append({**data, "settings": settings, "dice": dice})
    _, done = events.end()
    return {"start": start, "steps": steps, "done": done, "model": inference_routes.model_json(lm)}


def attention(lm: LanguageModel, text: str) -> dict:
    """POST /api/attention with every layer and head, both views and the all-heads grid, as the page asks."""
    req = attention_routes.AttentionRequest(text=text, view="both", grid=True)
    return _ask(attention_routes.attention_route, req, lm)


def attention_examples(lm: LanguageModel, text: str) -> dict:
    """GET /api/attention/examples, for this one sentence: no heads are measured for a notebook's text."""
    return {"model": lm.shown_name, "examples": [{"text": text, "note": ""}], "prominent": []}


def ablation(lm: LanguageModel, prompt: str, kind: str, layer: int, head: int | None, raw: bool) -> dict:
    """POST /api/experiments/ablate: the next-token table before and after one part is switched off."""
    req = experiment_routes.AblateRequest(prompt=prompt, raw=raw, kind=kind, layer=layer, head=head)
    return _ask(experiment_routes.ablate, req, lm)
