"""Schema fuzzing: schemathesis drives every operation of the OpenAPI schema, in process.

For each operation it generates at least 100 valid requests (positive) and 100 invalid ones
(negative) with a fixed seed, sends them to the real ASGI app (real routers, middleware and
generation loop; the model is the tiny stub of tests/hostile_model.py so that a generation
costs milliseconds), and runs every schemathesis check on each answer: no 5xx, status codes
and bodies as the schema documents them, invalid requests refused, valid ones accepted.
Server-sent-event answers get one more check: every event is strict UTF-8 JSON and the last
one is terminal.

It uses schemathesis' Python API, so it runs under `make test` with schemathesis' pytest
plugin switched off. Reference: https://schemathesis.readthedocs.io (4.x, "Python API").
"""

from __future__ import annotations

import json
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS  # noqa: E402

EXAMPLES = 100
SEED = 20261128


def sse_is_valid(ctx, response, case):
    """A streamed answer: strict JSON in every event, UTF-8, and a terminal event last."""
    if response.status_code != 200 or "text/event-stream" not in response.headers.get("content-type", [""])[0]:
        return None
    text = response.content.decode("utf-8")  # raises on invalid UTF-8
    events = []
    for chunk in text.split("\n\n"):
        lines = [ln for ln in chunk.split("\n") if ln]
        if not lines or lines[0].startswith(":"):
            continue
        name = lines[0].removeprefix("event: ")
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        json.loads(data, parse_constant=_no_constants)
        events.append(name)
    assert events and events[-1] in ("done", "error"), f"stream did not end with a terminal event: {events[-3:]}"
    return True


# Refusals of schema-valid data that the schema cannot express, as "<field>: <start of message>".
SEMANTIC_422 = (
    "model: unknown model",  # names come from GET /api/models
    "prompt: is ",  # "... N tokens long; the limit here is M": a token count, not a character count
    "prompt: has no tokens",
    "max_new_tokens: prompt (",  # prompt + max_new_tokens beyond the model's context
    "continuation: ",  # ids outside the vocabulary, or past the context
    "layers: ",  # layer numbers beyond this model, or a selection over the attention payload bound
    "heads: ",  # head numbers beyond this model's head count
    "breakdown.layer: ",  # ... layer, head or position beyond this model or this sentence
    "breakdown.head: ",
    "breakdown.query: ",
    "text: ",  # a sentence over the attention bound in tokens; a training text too short, or given without corpus "text"
    "resume: no pre-training run called",  # run ids name folders on disk
    "base: no checkpoint called",
    "tuned: no checkpoint called",
    "layers: ",  # layer numbers beyond this model's depth, or listed twice
)
# Positive cases keep their shape, but long computations are cut short to bound the run time:
# the code paths are the same at 4 tokens as at 512 (test_reliability covers the long ones).
CAPS = {"max_new_tokens": 4, "frames": 3, "steps": 5, "steps_per_frame": 3, "n_points": 40}


def capped(case):
    if isinstance(case.body, dict):
        for key, cap in CAPS.items():
            value = case.body.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
                case.body[key] = cap
    return case


def semantic_refusal(ctx, response, case):
    """A 422 for schema-valid input is allowed only for a limit the schema cannot express."""
    if response.status_code == 422 and case.meta is not None and "positive" in str(case.meta.generation.mode).lower():
        error = json.loads(response.content)["error"]
        assert error.startswith(SEMANTIC_422), f"schema-valid request refused: {error}"
    return True


def _no_constants(name):
    raise ValueError(f"non-standard JSON constant {name} in a response")


def strict_json(ctx, response, case):
    """Every JSON answer parses without NaN or Infinity."""
    if "application/json" in response.headers.get("content-type", [""])[0]:
        json.loads(response.content, parse_constant=_no_constants)
    return True


def no_training(stop, pause):
    """Stands in for a training run during fuzzing: the job routes, manager and limits are
    real, the hours of training are not (tests/test_reliability.py runs real, short jobs)."""
    yield "stopped", {"note": "placeholder job started by the schema fuzzer; no training was run"}


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory):
    from hostile_model import build

    from prediction_machine.web import jobs

    mp = pytest.MonkeyPatch()
    mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
    real_start = jobs.JobManager.start
    # The manager tidies up after every job with a full gc.collect(): right for real jobs, but
    # hundreds of placeholder jobs would spend minutes there.
    mp.setattr(jobs, "gc", type("NoGC", (), {"collect": staticmethod(lambda: 0)}))
    mp.setattr(jobs.JobManager, "start", lambda self, kind, work, folder=None: real_start(self, kind, no_training, folder))

    from prediction_machine.web import streaming
    from prediction_machine.web.app import create_app
    from prediction_machine.web.settings import ServerSettings

    streaming.reset_shutdown()
    folder = build(tmp_path_factory.mktemp("stub") / "model")
    app = create_app(ServerSettings(model=str(folder), max_running=4, max_queued=64))
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "max-stream-events": 1000,  # read whole streams (a generation is at most 512 steps + start + done)
        # A schema-valid request may still be refused with 422 for limits JSON Schema cannot
        # state (tokens, not characters; the model's context). `semantic_refusal` below
        # allows exactly those refusals, by message, and nothing else.
        "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2XX", "3XX", "401", "403", "404", "409", "422", "429"],
        }},
    })
    yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config, headers={"Host": "127.0.0.1"})
    mp.undo()


def _describe(e: BaseException) -> str:
    parts = [str(e)]
    for sub in getattr(e, "exceptions", ()):
        parts.append(f"{type(sub).__name__}: {sub}")
    return "\n".join(parts)


def all_checks():
    return [c for c in CHECKS.get_all() if c.__name__ != "max_response_time"]


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_lists_every_router(fuzz_schema):
    paths = {op.path for op in operations(fuzz_schema)}
    assert {"/api/generate", "/api/trace", "/api/tokenize", "/api/sample/preview", "/api/health"} <= paths


def fuzzer(op, mode, counts: dict, failures: list):
    """A hypothesis test for one operation (a factory, so each binds its own `op`)."""
    strategy = op.as_strategy(generation_mode=mode)
    @given(case=strategy.map(capped) if mode is GenerationMode.POSITIVE else strategy)
    @settings(
        max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    def run(case):
        counts[op.label] = counts.get(op.label, 0) + 1
        try:
            response = case.call(headers={"Host": "127.0.0.1"})
            case.validate_response(response, checks=all_checks(), additional_checks=[sse_is_valid, strict_json, semantic_refusal])
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - collect every failure, then report them together
            if len(failures) < 20:
                failures.append(f"{op.label} {_describe(e)[:1500]}\n  body sent: {str(case.body)[:200]}")

    return run


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_fuzz_every_operation(fuzz_schema, mode):
    failures: list[str] = []
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for op in operations(fuzz_schema):
        if mode is GenerationMode.NEGATIVE and not (op.body or op.query or op.path_parameters):
            continue  # nothing to make invalid

        run = fuzzer(op, mode, counts, failures)
        t0 = time.perf_counter()
        run()
        seconds[op.label] = time.perf_counter() - t0
        if op.body or op.query or op.path_parameters:
            assert counts.get(op.label, 0) >= EXAMPLES, (op.label, counts.get(op.label))
    print("\nseconds per operation:", {k: round(v, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])[:8]})
    assert not failures, "\n\n".join(failures)
