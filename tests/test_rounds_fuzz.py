"""Schema fuzzing of the class routes in classroom mode, as the teacher and as a student.

tests/test_fuzz.py drives every operation on a server without a token, where the class routes answer
404 before their logic runs. Here the same checks (tests/test_fuzz.py's) drive each /api/class
operation on a classroom server: once with the teacher's token, once with a student's signed session,
valid and invalid requests alike. Nothing may answer 5xx or outside its documented shapes.
"""

from __future__ import annotations

import json

import pytest
from conftest import make_app

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from test_fuzz import (  # noqa: E402
    HYPOTHESIS,
    SEED,
    SEMANTIC_422,
    all_checks,
    capped,
    is_positive,
    sse_is_valid,
    strict_json,
)

CLASS, TEACHER = "rounds-fuzz-class-token-77", "rounds-fuzz-teacher-token-88"
EXAMPLES = 30
# Beyond test_fuzz's: a progress report whose right answers outnumber its questions (two fields together);
# a rating round's blank prompt or a pair past its pairs, and a run with no pair the class has a majority on.
CLASS_422 = ("questions_right: ", "prompts: ", "pair: ", "pairs: ")


def class_refusal(ctx, response, case):
    """A 422 for schema-valid input only for a limit the schema cannot express."""
    if response.status_code == 422 and is_positive(case):
        error = json.loads(response.content)["error"]
        assert error.startswith(SEMANTIC_422 + CLASS_422), f"schema-valid request refused: {error}"
    return True


@pytest.fixture(scope="module")
def classroom(stub, tmp_path_factory):
    from fastapi.testclient import TestClient

    config = schemathesis.Config.from_dict({"seed": SEED, "checks": {"positive_data_acceptance": {
        "expected-statuses": ["2XX", "401", "403", "404", "409", "422", "429"]}}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path_factory.mktemp("runs")))
        app = make_app(model=stub, token=CLASS, teacher_token=TEACHER, rounds_per_hour=10_000,
                       class_rating_pairs=1, class_rating_steps=1)  # a rating round's pair is drawn live
        student = TestClient(app, base_url="http://127.0.0.1")
        student.get("/", params={"token": CLASS}, follow_redirects=False)
        cookie = "; ".join(f"{k}={v}" for k, v in student.cookies.items())
        teacher = {"Authorization": f"Bearer {TEACHER}"}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config,
                                                headers={"Host": "127.0.0.1", **teacher})
        # A student sends an empty Authorization, so no teacher header can reach the call from elsewhere.
        yield schema, {"teacher": teacher, "student": {"Cookie": cookie, "Authorization": ""}}


def fuzzer(op, mode, headers: dict, failures: list[str], statuses: set[int]):
    """A hypothesis test for one operation (a factory, so each binds its own `op`)."""
    strategy = op.as_strategy(generation_mode=mode)

    @given(case=strategy.map(capped) if mode is GenerationMode.POSITIVE else strategy)
    @settings(max_examples=EXAMPLES, **HYPOTHESIS)
    def run(case):
        try:
            response = case.call(headers={"Host": "127.0.0.1", **headers})
            statuses.add(response.status_code)
            case.validate_response(response, checks=all_checks(),
                                   additional_checks=[sse_is_valid, strict_json, class_refusal])
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - every failure, reported together
            if sum(f.startswith(op.label) for f in failures) < 2:
                failures.append(f"{op.label} {str(e)[:800]}\n  body sent: {str(case.body)[:200]}")

    return run


@pytest.mark.parametrize("who", ["teacher", "student"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
def test_every_class_route_answers_within_its_schema(classroom, who, mode):
    schema, headers = classroom
    ops = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/api/class/")]
    assert len(ops) >= 10, [op.label for op in ops]
    failures: list[str] = []
    statuses: set[int] = set()
    for op in ops:
        if mode is GenerationMode.NEGATIVE and not (op.body or op.query or op.path_parameters):
            continue
        fuzzer(op, mode, headers[who], failures, statuses)()
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:  # each identity reached what it may do, and was refused the rest
        assert 200 in statuses and 403 in statuses, statuses
