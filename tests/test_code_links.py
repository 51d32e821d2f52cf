"""The page's "view code" links and GET /api/source, which serves them.

The allowlist lives in one place (prediction_machine/web/code_links.py). These tests check that it
is exactly the set of names the JavaScript links to, that every name resolves to its source, and
that nothing else is served, and that nothing is imported while asking.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from prediction_machine.web import code_links
from prediction_machine.web.app import create_app

PACKAGE = Path(code_links.__file__).resolve().parent.parent
JS = PACKAGE / "web" / "static" / "js"
# A quoted dotted name in the JavaScript: codeLink("prediction_machine...."), or a stage's link list.
QUOTED_NAME = re.compile(r"""["'`](prediction_machine(?:\.[A-Za-z_][A-Za-z0-9_]*)+)["'`]""")


@pytest.fixture(scope="module")
def client():
    """The real app, built as tests/conftest.py builds it (no model needed to read source)."""
    with TestClient(create_app(), base_url="http://127.0.0.1") as c:
        c.get("/api/source", params={"name": "warm-up"})  # first-request machinery imports what it needs now
        yield c


def js_names() -> set[str]:
    return {m for path in JS.rglob("*.js") for m in QUOTED_NAME.findall(path.read_text(encoding="utf-8"))}


def module_file(name: str) -> str:
    """'prediction_machine.model.transformer.Block.forward' -> 'model/transformer.py' (longest real file)."""
    parts = name.split(".")[1:]
    for cut in range(len(parts), 0, -1):
        if (PACKAGE.joinpath(*parts[: cut - 1]) / f"{parts[cut - 1]}.py").is_file():
            return "/".join(parts[:cut]) + ".py"
    raise AssertionError(f"no module file for {name}")


# -------------------------------------------------------------------- one allowlist, agreeing with the page


def test_the_allowlist_is_exactly_the_names_the_page_links_to():
    assert len(set(code_links.SOURCE_NAMES)) == len(code_links.SOURCE_NAMES), "a name is listed twice"
    linked = js_names()
    assert linked, "the regex found no view-code links in the JavaScript"
    assert linked - set(code_links.SOURCE_NAMES) == set(), "linked from the page but not served"
    assert set(code_links.SOURCE_NAMES) - linked == set(), "served but linked from nowhere"


def test_every_inference_stage_links_into_its_own_module():
    # static/js/sections/inference-render.js:
    #   ["tokenizer", "1. Tokenization", ["prediction_machine.inference.tokenizer...."], ...
    text = (JS / "sections" / "inference-render.js").read_text(encoding="utf-8")
    stages = re.findall(r'^\s*\["(\w+)", "[^"]+", \[([^\]]*)\]', text, flags=re.M)
    ids = [s for s, _ in stages]
    assert ids == ["tokenizer", "embedding", "transformer", "prediction", "sampling", "generation"]
    for stage, links in stages:
        names = QUOTED_NAME.findall(links)
        assert names, stage
        for name in names:
            assert module_file(name).endswith(f"/{stage}.py"), (stage, name)


@pytest.mark.parametrize("name", code_links.SOURCE_NAMES)
def test_every_name_resolves_to_its_definition(client, name):
    before = set(sys.modules)
    answer = client.get("/api/source", params={"name": name})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["name"] == name
    assert data["file"] == f"prediction_machine/{module_file(name)}"
    lines = (PACKAGE / module_file(name)).read_text(encoding="utf-8").splitlines(keepends=True)
    assert data["source"] == "".join(lines[data["line"] - 1 : data["line"] - 1 + data["source"].count("\n")])
    last = name.rsplit(".", 1)[1]
    definition = rf"^\s*(async\s+def|def|class)\s+{last}\b"
    assert re.search(definition, data["source"], flags=re.M), data["source"][:200]
    assert set(sys.modules) == before, "serving the source imported a module"


# The stages whose code the server also runs in a batched form: the link must open the plain code.
PLAIN_STAGES = ("prediction_machine.inference.prediction.predict",
                "prediction_machine.inference.sampling.draw",
                "prediction_machine.inference.sampling.distribution")
SERVING_WORDS = ("generators", "order", "Sequence", "per_setting", "FIRST_LOOK", "batch")


@pytest.mark.parametrize("name", PLAIN_STAGES)
def test_sampling_and_prediction_links_open_short_code_with_no_serving_in_it(name):
    found = code_links.find(name)
    assert found is not None and found.source.count("\n") <= 40, (name, found and found.source.count("\n"))
    code = "".join(line.split("#")[0] for line in found.source.splitlines(True))  # comments may say why
    assert not [w for w in SERVING_WORDS if w in code], name
    assert "_rows(" not in found.source, "the link opens a wrapper around the batched code"


@pytest.mark.parametrize("name", sorted(code_links.BATCHED_TWINS))
def test_a_batched_twin_is_named_under_the_code_and_tested_equal_to_it(client, name):
    twin = code_links.BATCHED_TWINS[name]
    note = client.get("/api/source", params={"name": name}).json()["note"]
    module = PACKAGE.parent / (name.rsplit(".", 1)[0].replace(".", "/") + ".py")
    assert twin in note and code_links.TWIN_TEST in note
    assert re.search(rf"^def {twin}\(", module.read_text(), re.M)
    test = (PACKAGE.parent / code_links.TWIN_TEST).read_text()
    assert twin in test and name.rsplit(".", 1)[1] + "(" in test  # the twin and the shown code, side by side
    assert client.get("/api/source", params={"name": PLAIN_STAGES[2]}).json()["note"] is None


def test_find_follows_classes_into_methods():
    found = code_links.find("prediction_machine.model.transformer.Block.forward")
    assert found is not None and found.file == "prediction_machine/model/transformer.py"
    assert found.source.lstrip().startswith("def forward(")


# ------------------------------------------------------------------------ nothing else, and nothing imported


def unloaded_function() -> str:
    """A real top-level function of a package module that is not imported yet."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts)
        if module in sys.modules or "__init__" in parts or "__main__" in parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                return f"{module}.{node.name}"
    pytest.skip("every module of the package is already imported")


@pytest.mark.parametrize(
    "name",
    [
        "prediction_machine.__main__.main",
        "prediction_machine.cli.main",
        "bench.run",
        "os.system",
        "prediction_machine.inference.sampling.__dict__",
        "prediction_machine.inference.sampling.draw.__globals__",
        "prediction_machine.inference.sampling._something",
        "prediction_machine.inference.sampling",
        "prediction_machine.inference.sampling.draw ",
        "prediction_machine..inference.sampling.draw",
        "prediction_machine/../../etc/passwd",
        "",
        "UNLOADED",
    ],
)
def test_anything_else_is_404_and_imports_nothing(client, name):
    if name == "UNLOADED":
        name = unloaded_function()
        assert name.rsplit(".", 1)[0] not in sys.modules
    before = set(sys.modules)
    answer = client.get("/api/source", params={"name": name})
    assert answer.status_code == 404, answer.text
    assert "is not one of the page's 'view code' links" in answer.json()["error"]
    assert set(sys.modules) == before, f"asking for {name!r} imported {set(sys.modules) - before}"
