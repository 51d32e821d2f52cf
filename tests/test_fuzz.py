"""Schema fuzzing: schemathesis drives every operation of the OpenAPI schema, in process.

For each operation it generates at least 100 valid requests (positive) and 100 invalid ones
(negative) with a fixed seed, sends them to the real ASGI app (real routers, middleware and
generation loop; the server's model is the tiny stub of tests/hostile_model.py so that a
generation costs milliseconds, and `model`, an enum of this server's names, also picks the
registered ones, cut short by CAPS), and runs every schemathesis check on each answer: no 5xx, status codes
and bodies as the schema documents them, invalid requests refused, valid ones accepted.
Server-sent-event answers get one more check: every event is strict UTF-8 JSON and the last
one is terminal. Then the stateful phase follows the schema's OpenAPI links (a created playground
session or training job, then the routes that take its id) with the same checks, plus
schemathesis' stateful ones (a deleted session is gone, a created one is there).

It uses schemathesis' Python API, so it runs under `make test` with schemathesis' pytest
plugin switched off. Reference: https://schemathesis.readthedocs.io (4.x, "Python API").
"""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import make_app, read_sse

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS  # noqa: E402

# Cases per operation and mode; PM_FUZZ_EXAMPLES raises it for the long run (bench/fuzz_all.sh).
EXAMPLES = int(os.environ.get("PM_FUZZ_EXAMPLES", "50"))
SEED = 20261128
# Both phases: the same examples on every run, nothing remembered between runs, no time limit per example.
HYPOTHESIS = dict(derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))


def sse_is_valid(ctx, response, case):
    """A streamed answer: strict JSON in every event, UTF-8, and a terminal event last."""
    if (
        response.status_code != 200
        or "text/event-stream" not in response.headers.get("content-type", [""])[0]
    ):
        return None
    events = [name for name, _ in read_sse(response.content)]  # raises on invalid UTF-8 or JSON
    assert events and events[-1] in ("done", "error"), (
        f"stream did not end with a terminal event: {events[-3:]}"
    )
    return True


# Refusals of schema-valid data that the schema cannot express, as "<field>: <start of message>".
SEMANTIC_422 = (
    "prompt: is ",  # "... N tokens long; the limit here is M": a token count, not a character count
    "prompt: has no tokens",
    "question: is ",  # "... N tokens with the chat markers; these models read at most 128": tokens
    "max_new_tokens: prompt (",  # prompt + max_new_tokens beyond the model's context
    "continuation: ",  # ids outside the vocabulary, or past the context
    "layers: ",  # layer numbers beyond this model, or a selection over the attention payload bound
    "heads: ",  # head numbers beyond this model's head count
    "breakdown.layer: ",  # ... layer, head or position beyond this model or this sentence
    "breakdown.head: ",
    "breakdown.query: ",
    # a sentence over the attention bound in tokens; a training text too short, or given without corpus "text"
    "text: ",
    "resume: no pre-training run called",  # run ids name folders on disk
    "resume: there is no saved run",
    # the library checks each rated pair (blank once trimmed, chosen = rejected, 1..64) and names its place
    "pairs",
    "start: ",  # typed note names that do not parse, or notes outside the melody model's range
    "target: ",  # a token id beyond this model's vocabulary (the schema bound is the largest model's)
    "base: no checkpoint called",
    "tuned: no checkpoint called",
    "layers: ",  # layer numbers beyond this model's depth, or listed twice
    # a point index beyond this playground session's points (the stateful phase reaches them)
    "remove: index ",
    "add: a session holds at most",  # more points than a session holds, counting the ones it has
    # the experiments: a layer, head or token id beyond this model; a source prompt too long in tokens
    "layer: ",
    "head: ",
    "token: ",
    "source: ",
    # branch, lens and steer: new tokens past the model's context after the prompt's tokens, a step
    # past the generation's end, a steering text too long in tokens
    "new_tokens: ",
    "step: ",
    "positive[",
    "negative[",
    # where did it learn that: a model whose training text is not here (SmolLM2), or a run gone since;
    # the stages compared: models not trained one from another
    "model: ",
    "after: ",
    "before: ",
    "stages: ",
)
# Positive cases keep their shape, but long computations are cut short to bound the run time:
# the code paths are the same at 4 tokens as at 512 (test_reliability covers the long ones).
CAPS = {"max_new_tokens": 4, "new_tokens": 4, "frames": 3, "steps": 5, "steps_per_frame": 3, "n_points": 40,
        "answer_tokens": 2}


def capped(case):
    if isinstance(case.body, dict):
        for key, cap in CAPS.items():
            value = case.body.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
                case.body[key] = cap
    return case


def semantic_refusal(ctx, response, case):
    """A 422 for schema-valid input is allowed only for a limit the schema cannot express."""
    if response.status_code == 422 and is_positive(case):
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


def plain_run_only(scan_steps):
    """Stands in for the head scan's L x H reruns during fuzzing: its plain run only (a scan of no
    layers). The route, stream and events are real; tests/test_experiments_*.py run whole scans."""
    return lambda lm, ids, raw=False: iter([next(scan_steps(lm, ids, raw))])


def two_questions(safety_with_direction):
    """Stands in for the steered safety table's 3 x 40 answers during fuzzing: one harmful and one
    benign question, 4 tokens each. The route is real; tests/test_what_if.py measures the table."""
    from prediction_machine.training.curriculum import safety

    items = tuple(next(i for i in safety.load_items() if i["kind"] == k) for k in ("harmful", "benign"))
    return lambda lm, strength: safety_with_direction(lm, strength, items=items, answer_tokens=4)


def first_questions(calibration):
    """Stands in for the calibration chart's 64 or 146 greedy answers during fuzzing: the set's first two
    questions, not kept. The route is real; tests/test_calibration.py measures whole charts."""
    return lambda lm, set_name: calibration.calibration(lm, set_name,
                                                        questions=calibration.question_set(set_name)[:2])


def no_training(stop, pause):
    """Stands in for a training run during fuzzing: the job routes, manager and limits are
    real, the hours of training are not (tests/test_reliability.py runs real, short jobs)."""
    yield "stopped", {"note": "placeholder job started by the schema fuzzer; no training was run"}


@pytest.fixture(scope="module")
def fuzz_schema(stub, tmp_path_factory):
    from prediction_machine.experiments import head_scan, steering
    from prediction_machine.inference import calibration
    from prediction_machine.web import jobs

    config = schemathesis.Config.from_dict({
        "seed": SEED,
        # read whole streams (a generation is at most 512 steps + start + done)
        "max-stream-events": 1000,
        # the safety table generates 40 answers per model the first time (then cached)
        "request-timeout": 120,
        # A schema-valid request may still be refused with 422 for limits JSON Schema cannot
        # state (tokens, not characters; the model's context). `semantic_refusal` below
        # allows exactly those refusals, by message, and nothing else.
        "checks": {"positive_data_acceptance": {
            "expected-statuses": ["2XX", "3XX", "401", "403", "404", "409", "422", "429"],
        }},
    })
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        mp.setattr(head_scan, "scan_steps", plain_run_only(head_scan.scan_steps))
        mp.setattr(steering, "safety_with_direction", two_questions(steering.safety_with_direction))
        mp.setattr(calibration, "cached_calibration", first_questions(calibration))
        real_start = jobs.JobManager.start
        # The manager tidies up after every job with a full gc.collect(): right for real jobs, but
        # hundreds of placeholder jobs would spend minutes there.
        mp.setattr(jobs, "gc", type("NoGC", (), {"collect": staticmethod(lambda: 0)}))
        mp.setattr(
            jobs.JobManager,
            "start",
            lambda self, kind, work, folder=None, **kw: real_start(self, kind, no_training, folder, **kw),
        )
        # Training places enough for every job the fuzzer starts: its own jobs must not make its
        # later requests 429s (the one-job-per-student rule is tested in test_abuse_fairness).
        app = make_app(model=stub, max_running=4, max_queued=64, max_training_jobs=64)
        yield schemathesis.openapi.from_asgi(
            "/openapi.json", app, config=config, headers={"Host": "127.0.0.1"}
        )


def _describe(e: BaseException) -> str:
    parts = [str(e)]
    for sub in getattr(e, "exceptions", ()):
        parts.append(f"{type(sub).__name__}: {sub}")
    return "\n".join(parts)


def all_checks():
    checks = [c for c in CHECKS.get_all() if c.__name__ != "max_response_time"]
    assert "positive_data_acceptance" in {c.__name__ for c in checks}
    return checks


def is_positive(case) -> bool:
    return case.meta is not None and "positive" in str(case.meta.generation.mode).lower()


def operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_lists_every_router(fuzz_schema):
    paths = {op.path for op in operations(fuzz_schema)}
    assert {"/api/generate", "/api/trace", "/api/tokenize", "/api/sample/preview", "/api/health"} <= paths


def room_for(failures: list[str], label: str) -> bool:
    """Two failures per operation at most, so one broken route cannot hide the others' failures."""
    return len(failures) < 60 and sum(f.startswith(label + " ") for f in failures) < 2


def fuzzer(op, mode, counts: dict, failures: list):
    """A hypothesis test for one operation (a factory, so each binds its own `op`)."""
    strategy = op.as_strategy(generation_mode=mode)

    @given(case=strategy.map(capped) if mode is GenerationMode.POSITIVE else strategy)
    @settings(max_examples=EXAMPLES, **HYPOTHESIS)
    def run(case):
        counts[op.label] = counts.get(op.label, 0) + 1
        try:
            response = case.call(headers={"Host": "127.0.0.1"})
            case.validate_response(
                response, checks=all_checks(), additional_checks=[sse_is_valid, strict_json, semantic_refusal]
            )
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - every failure, reported together
            if room_for(failures, op.label):
                failures.append(f"{op.label} {_describe(e)[:1500]}\n  body sent: {str(case.body)[:200]}")

    return run


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
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
    print(f"\n{mode.name.lower()}: {sum(counts.values())} requests over {len(counts)} operations")
    print(
        "seconds per operation:",
        {k: round(v, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])[:8]},
    )
    assert not failures, "\n\n".join(failures)


# ----------------------------------------------------------------------------- the schema is exact


def test_model_is_an_enum_of_this_servers_names(fuzz_schema):
    from prediction_machine.model import models

    raw = fuzz_schema.raw_schema
    fields = {
        name: body["properties"]["model"]
        for name, body in raw["components"]["schemas"].items()
        if "model" in body.get("properties", {})
    }
    assert {
        "TokenizeRequest",
        "TraceRequest",
        "PreviewRequest",
        "GenerateRequest",
        "AttentionRequest",
    } <= set(fields)
    # the alignment lab's and the source lookup's `model` is a run id (a pattern, not a model name)
    assert fields.pop("SampleRequest")["pattern"] and fields.pop("SourceRequest")["pattern"]
    # "I do not know" is counted on the three shipped tiny stages only: an enum of exactly those
    tiny_stages = ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"]
    assert fields.pop("DontKnowRequest")["enum"] == tiny_stages
    # every other is an enum of this server's names
    for name, field in fields.items():
        enum = next(s["enum"] for s in field["anyOf"] if s.get("type") == "string")
        # the registered text models, and the stub the server was started with, by its shown name
        # (not its path)
        assert enum == [*models.text_models(), "model"], name
        assert "digits" not in enum and "shakespeare-dpo" in enum


def test_every_server_limit_bounds_its_own_type(fuzz_schema):
    """A bound read from the settings (validation.up_to) sits where a client reads it: maxLength on a
    string, maxItems on a list, maximum on a number, on an optional field's own type too (on the
    anyOf union a `maximum` bound no list, and the fuzzer sent the class rating round 7+ prompts)."""
    from prediction_machine.web.settings import ServerSettings

    raw = fuzz_schema.raw_schema["components"]["schemas"]
    prompts = raw["RatingRequest"]["properties"]["prompts"]
    array = next(s for s in prompts["anyOf"] if s.get("type") == "array")
    assert array["maxItems"] == ServerSettings().class_rating_pairs and "maximum" not in prompts

    def walk(node, where):
        if isinstance(node, dict):
            if "maximum" in node:
                assert node.get("type") in ("integer", "number"), f"{where}: maximum on {node}"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(raw, "components.schemas")


def test_options_and_unknown_methods_list_every_method(fuzz_schema):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_schema.app, base_url="http://127.0.0.1") as c:
        r = c.options("/api/backprop/sessions/abcdefgh")
        assert r.status_code == 405 and r.headers["allow"] == "GET, DELETE"
        assert c.put("/api/backprop/sessions").headers["allow"] == "POST"


def test_links_connect_created_ids_to_their_routes(fuzz_schema):
    paths = fuzz_schema.raw_schema["paths"]
    session = paths["/api/backprop/sessions"]["post"]["responses"]["201"]["links"]
    users = {
        op["operationId"]
        for path, ops in paths.items()
        if path.startswith("/api/backprop/sessions/{key}")
        for op in ops.values()
    }
    assert {link["operationId"] for link in session.values()} == users and len(users) == 8
    assert all(link["parameters"] == {"key": "$response.body#/id"} for link in session.values())
    for kind in ("pretrain", "finetune", "lora"):
        job = paths[f"/api/curriculum/{kind}"]["post"]["responses"]["200"]["links"]
        assert len(job) == 3 and all(
            link["parameters"] == {"job_id": "$response.body#/job/id"} for link in job.values()
        )


# ----------------------------------------------------------------------------- the stateful phase

SCENARIOS = int(os.environ.get("PM_FUZZ_SCENARIOS", "20"))  # linked call sequences, each <= STEPS
STEPS = 6


def test_stateful_links(fuzz_schema):
    """Create, then use: schemathesis follows the links from a created session or job to every route
    that takes its id, with every check (use_after_free, ensure_resource_availability among them)."""
    failures: list[str] = []
    counts: dict[str, int] = {}
    Machine = fuzz_schema.as_state_machine()

    class Linked(Machine):
        def setup(self):
            # Each scenario starts with no playground sessions: the per-operation runs above (and
            # earlier scenarios) would otherwise fill the store, and every creation would be a 429.
            state = fuzz_schema.app.state
            if hasattr(state, "backprop_sessions"):
                del state.backprop_sessions

        def before_call(self, case):
            counts[case.operation.label] = counts.get(case.operation.label, 0) + 1
            if is_positive(case):
                capped(case)

        def get_call_kwargs(self, case):
            return {"headers": {"Host": "127.0.0.1"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                super().validate_response(
                    response, case, additional_checks=[sse_is_valid, strict_json, semantic_refusal], **kwargs
                )
            except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - every failure, reported together
                if room_for(failures, case.operation.label):
                    failures.append(
                        f"{case.operation.label} {_describe(e)[:1500]}\n  body sent: {str(case.body)[:200]}"
                    )

    Linked.run(settings=settings(max_examples=SCENARIOS, stateful_step_count=STEPS, **HYPOTHESIS))
    print("\nstateful calls:", sum(counts.values()), dict(sorted(counts.items())))
    linked = [label for label in counts if "{key}" in label or "{job_id}" in label]
    assert len(linked) >= 4, f"the stateful phase reached too few linked routes: {counts}"
    assert not failures, "\n\n".join(failures)
