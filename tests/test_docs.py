"""Every setting, command and route is documented, and a setting changed at start-up is the one enforced.

In the style of datasette's tests/test_docs.py: the code is the list of what exists, the docs
must name each of them, so a new limit or route cannot ship undocumented.
"""

from fastapi.testclient import TestClient

from prediction_machine.web.app import create_app
from prediction_machine.web.serve import settings_from_env
from prediction_machine.web.settings import ServerSettings


def test_a_limit_raised_through_the_environment_is_the_one_the_schema_enforces():
    default = ServerSettings().max_new_tokens
    settings = settings_from_env(ServerSettings(), {"PREDICTION_MACHINE_MAX_NEW_TOKENS": str(default * 2)})
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        body = {"prompt": "Romeo:", "chat": False, "model": "shakespeare-base", "k": 3, "seed": 1}
        r = client.post("/api/sample/preview", json={**body, "draws_before": default + 1})
        assert r.status_code == 200, r.text
        r = client.post("/api/sample/preview", json={**body, "draws_before": default * 2 + 1})
        assert r.status_code == 422 and r.json()["error"].startswith("draws_before:") and str(default * 2) in r.text
        props = client.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]["properties"]
        assert props["max_new_tokens"]["maximum"] == default * 2
