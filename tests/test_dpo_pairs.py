"""The learner's rated pairs are checked in full before a DPO job starts: places count from 0 as in
the body, and a pair of allowed characters that is too many tokens is refused with the limit."""

from __future__ import annotations

import pytest
from conftest import make_app
from fastapi.testclient import TestClient

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import dpo, preferences

GOOD = {"prompt": "Who is Hamlet?", "chosen": "The prince of Denmark.", "rejected": "A fish."}
# 200 characters of two-byte letters: allowed by the schema, far over 128 tokens with the chat markers
LONG = {**GOOD, "chosen": "ÿ" * preferences.MAX_TEXT}


def test_the_first_pair_is_pairs_0():
    with pytest.raises(preferences.PairError, match=r"^pairs\[0\]\.chosen: is empty"):
        preferences.learner_pairs([{**GOOD, "chosen": " "}, GOOD])
    with pytest.raises(preferences.PairError, match=r"^pairs\[1\]: the chosen and the rejected"):
        preferences.learner_pairs([GOOD, {**GOOD, "rejected": GOOD["chosen"]}])


def test_a_pair_over_the_context_is_refused_before_the_job(stub, tmp_path, monkeypatch):
    with pytest.raises(preferences.PairError, match=r"^pairs\[1\]\.chosen: .* at most 128"):
        dpo.fitting_pairs(shipped_checkpoint("shakespeare-chat"), [GOOD, LONG])
    assert len(dpo.fitting_pairs(shipped_checkpoint("shakespeare-chat"), [GOOD])) == 1
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    with TestClient(make_app(model=stub), base_url="http://127.0.0.1") as c:
        r = c.post("/api/curriculum/align", json={"pairs": [GOOD, LONG], "steps": 1})
        assert r.status_code == 422, r.text
        assert r.json()["error"].startswith("pairs[1].chosen: ") and "128" in r.json()["error"]
    assert not any(tmp_path.iterdir())  # no job, no run folder


def test_the_schema_states_the_pair_count_the_server_takes(stub):
    app = make_app(model=stub)
    field = app.openapi()["components"]["schemas"]["AlignRequest"]["properties"]["pairs"]
    array = next(s for s in field.get("anyOf", [field]) if s.get("type") == "array")
    assert (array["minItems"], array["maxItems"]) == (1, preferences.MAX_PAIRS)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = c.post("/api/curriculum/align", json={"pairs": []})
        assert r.status_code == 422 and r.json()["error"].startswith("pairs: "), r.text
