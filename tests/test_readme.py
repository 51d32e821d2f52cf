"""The README a newcomer reads: its Python snippet runs as written, its map of the code (docs/code.md) names
real files and every module, its links lead somewhere, and nothing a newcomer reads points to an issue tracker
they cannot see."""

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CODE_MAP = ROOT / "docs" / "code.md"  # the README links to it
MAX_LINES = 250  # a README read in one sitting; the rest lives in docs/
MAX_WIDTH = 110  # the project's line length, for prose too


def section(title: str) -> str:
    return README.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_python_api_snippet_runs_as_written(lm):  # lm: the session's model, so pm.load() is cached
    snippet = re.search(r"```python\n(.*?)```", section("The Python API"), re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) > lm.config.n_layers  # one line per layer of the logit lens, then the tokens
    assert "Paris" in "\n".join(lines[lm.config.n_layers:])  # the greedy answer, token by token


def test_the_readme_is_short_and_narrow():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    wide = [f"README.md:{i}" for i, line in enumerate(lines, 1) if len(line) > MAX_WIDTH]
    assert not wide, f"lines over {MAX_WIDTH} characters: {wide}"


def test_the_two_commands_are_the_quick_start():
    quick = section("Quick start")
    assert "make serve" in quick and "make test" in quick
    targets = re.findall(r"^(\w+):", (ROOT / "Makefile").read_text(), re.M)
    assert {"serve", "test"} <= set(targets)


def map_paths() -> list[str]:
    """The paths the README's map names, built from its indentation (two spaces a level).

    "  model/\\n    chat.py  the chat template"
    -> ["prediction_machine/model/", "prediction_machine/model/chat.py"]
    Lines indented past the name column continue the description above them.
    """
    assert "docs/code.md" in section("The code")
    block = re.search(r"```\n(prediction_machine/.*?)```", CODE_MAP.read_text(), re.S).group(1)
    parents: list[str] = []
    paths = []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= 20:
            continue
        name = line.split()[0]
        depth = indent // 2
        parents = parents[:depth]
        path = "".join(parents) + name
        paths.append(path)
        if name.endswith("/"):
            parents.append(name)
    return paths


def test_the_map_names_only_files_that_exist():
    missing = [p for p in map_paths() if not (ROOT / p).exists()]
    assert not missing, f"docs/code.md names files that do not exist: {missing}"


def test_the_map_names_every_module():
    named = set(map_paths())
    package = ROOT / "prediction_machine"
    modules = [p.relative_to(ROOT).as_posix() for p in package.rglob("*.py") if "__pycache__" not in p.parts]
    # a sub-package's __init__.py only gathers its modules; the map names the ones that hold code
    unnamed = [m for m in modules if m not in named and not (m.endswith("/__init__.py") and m.count("/") > 1)]
    assert not unnamed, f"add a line for each to the map in docs/code.md: {unnamed}"


def test_links_in_the_readme_and_docs_lead_somewhere():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_no_issue_numbers_where_a_newcomer_reads():
    """An issue number points to a tracker a newcomer cannot see: say what and why instead."""
    pattern = re.compile(r"\bissues? #?\d+|\(#\d+\)", re.I)
    files = [README, *(ROOT / "docs").rglob("*.md"), ROOT / "Makefile", ROOT / "pyproject.toml"]
    read = {".py", ".js", ".css", ".html", ".md", ".json"}
    for folder in ("prediction_machine", "tests", "bench"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in read]
    hits = [
        f"{path.relative_to(ROOT)}:{i}"
        for path in files
        if "__pycache__" not in path.parts
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"issue numbers in: {hits}"


def test_the_classroom_limits_table_names_real_settings():
    """docs/classroom.md says what happens beyond each limit; the setting it names must exist."""
    from dataclasses import fields

    from prediction_machine.web.settings import ServerSettings

    limits = (ROOT / "docs" / "classroom.md").read_text().split("## Limits", 1)[1].split("\n## ", 1)[0]
    table = limits.split("\n\n", 2)[2]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| limit")]
    named = [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[3])]
    assert len(named) >= len(rows)  # every row names its setting
    unknown = set(named) - {f.name for f in fields(ServerSettings)}
    assert not unknown, f"docs/classroom.md names settings ServerSettings does not have: {unknown}"
