"""The layout's promises, checked by reading the code: no import cycles, and web/ is removable."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prediction_machine"
# Imports of web/ from outside it: `serve` starts the web server, and says so if web/ is gone.
WEB_IMPORTS_ALLOWED = {
    ("prediction_machine.cli.inference", "prediction_machine.web.serve"),
    ("prediction_machine.cli.inference", "prediction_machine.web.early"),
    # A notebook figure is drawn by the page's JS from the page's JSON: it calls the routes in-process.
    ("prediction_machine.notebook.answers", "prediction_machine.web.routes.attention"),
    ("prediction_machine.notebook.answers", "prediction_machine.web.routes.experiments"),
    ("prediction_machine.notebook.answers", "prediction_machine.web.routes.inference"),
    # A recorded generation holds the server's own events: `record` renders its steps with the route's code.
    ("prediction_machine.cli.record", "prediction_machine.web.routes.inference"),
    ("prediction_machine.notebook.answers", "prediction_machine.web.settings"),
}  # serve binds first


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every package module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert (
        len(graph) > 40 and graph["prediction_machine.inference.generation"]
    )  # the reader found the package
    assert cycles(graph) == []


def test_nothing_outside_web_imports_web():
    outside = [
        (m, d)
        for m, deps in import_graph().items()
        if not m.startswith("prediction_machine.web")
        for d in deps
        if d.startswith("prediction_machine.web")
    ]
    assert set(outside) == WEB_IMPORTS_ALLOWED


def test_no_file_is_longer_than_400_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*")
        if p.suffix in {".py", ".js", ".css", ".html"} and (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


CLI_WITHOUT_WEB = r"""
import contextlib, io, sys
# An editable install maps the package to the checkout; drop that so only the copy is seen.
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
import prediction_machine
from prediction_machine.cli import main
assert prediction_machine.__file__.startswith(sys.argv[1]), prediction_machine.__file__
out = sys.argv[2]
commands = [
    ["models", "--json"],
    ["tokenize", "Hello world", "--json"],
    ["generate", "Hi", "--max-new-tokens", "3", "--temperature", "0", "--json"],
    ["attention", "The cat sat", "--layer", "0", "--json"],
    ["backprop", "--steps", "3", "--points", "40", "--json"],
    ["pretrain", "--preset", "live", "--steps", "2", "--corpus-chars", "20000", "--eval-every", "2",
     "--sample-every", "2", "--out", out + "/base", "--json"],
    ["finetune", "--steps", "1", "--batch-size", "2", "--out", out + "/chat", "--json"],
]
for argv in commands:
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    print(argv[0], rc, flush=True)
print("serve", main(["serve", "--port", "1"]))
"""


@pytest.mark.slow
def test_the_library_and_cli_work_without_web(tmp_path):
    copy = tmp_path / "lib"
    shutil.copytree(PACKAGE, copy / "prediction_machine", ignore=shutil.ignore_patterns("web", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(copy)}
    result = subprocess.run(
        [sys.executable, "-c", CLI_WITHOUT_WEB, str(copy), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    codes = dict(line.split() for line in result.stdout.split("\n") if line)
    assert codes == {
        "models": "0",
        "tokenize": "0",
        "generate": "0",
        "attention": "0",
        "backprop": "0",
        "pretrain": "0",
        "finetune": "0",
        "serve": "2",
    }, result.stderr[-3000:]
    assert "serve needs the web part of prediction-machine" in result.stderr


def test_make_test_lints_first_and_the_declared_line_length_is_enforced():
    import re
    import tomllib

    root = PACKAGE.parent
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^test: lint\b", makefile, re.M), "make test must run make lint first"
    ruff = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["line-length"] == 110 and "E501" not in ruff["lint"].get("ignore", [])
