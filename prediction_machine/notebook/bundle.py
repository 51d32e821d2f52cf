"""The page's own JS modules and CSS, joined into one self-contained piece of HTML for a notebook output.

A notebook output cannot import "../lib/dom.js" from a server, and JupyterLab or VS Code may show it
with no network at all. So the modules that a figure needs are read from web/static/js, in the order
their imports require, and each becomes a function in one inline script:

    import { el, svg } from "../lib/dom.js";       ->   const { el, svg } = modules["lib/dom.js"];
    export function prediction(panel, ...) {...}    ->   function prediction(panel, ...) {...}
                                                         ... return { prediction, ... };

The module's code is otherwise the page's code, character for character. Each module function gets the
notebook's `fetch`, `location` and `history` as arguments, so that the page's words (words.js fetches
them), its API calls (answered from numbers the kernel computed) and its shared-link state (kept in the
output, never in JupyterLab's address bar) all stay inside the output. The CSS goes into the output's
shadow root, so the page's styles and the notebook's do not touch each other.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
JS = STATIC / "js"
HOST = Path(__file__).resolve().parent / "host.js"  # the notebook side: builds each figure, answers fetch

# `import { a, b as c } from "./x.js";`, `import * as format from "./x.js";` (an import may span lines)
IMPORT = re.compile(r'^import\s+(?P<what>[^;]+?)\s+from\s+"(?P<path>[^"]+)";[ \t]*$', re.M | re.S)
# `export { embedding } from "./stages-embedding.js";`
REEXPORT = re.compile(r'^export\s+\{(?P<names>[^}]+)\}\s+from\s+"(?P<path>[^"]+)";[ \t]*$', re.M)
# `export { LANGUAGE };` (a name imported or declared above, passed on)
LOCAL_EXPORT = re.compile(r'^export\s+\{(?P<names>[^}]+)\};[ \t]*$', re.M)
# `export function f`, `export async function f`, `export const X`, `export class E`
EXPORT = re.compile(r"^export\s+(?P<kind>(?:async\s+)?function\*?|const|let|class)\s+(?P<name>\w+)", re.M)


def _key(path: Path) -> str:
    """A module's name in the bundle: its path under web/static/js ("lib/dom.js"), or "host.js"."""
    return path.name if path == HOST else path.relative_to(JS).as_posix()


def _bindings(what: str, source: str) -> str:
    """`{ a, b as c }` or `* as m` -> the const declaration that reads them from the bundle's modules."""
    what = " ".join(what.split())
    if what.startswith("* as "):
        return f"const {what[5:]} = modules[{json.dumps(source)}];"
    if not (what.startswith("{") and what.endswith("}")):
        raise ValueError(f"unsupported import form: import {what} from {source!r}")
    names = [n.strip() for n in what[1:-1].split(",") if n.strip()]
    pairs = [n.replace(" as ", ": ") for n in names]
    return f"const {{ {', '.join(pairs)} }} = modules[{json.dumps(source)}];"


def _convert(path: Path, order: list[Path], seen: set[Path]) -> None:
    """Add `path` after every module it imports (depth first), each once."""
    if path in seen:
        return
    seen.add(path)
    text = path.read_text(encoding="utf-8")
    for m in list(IMPORT.finditer(text)) + list(REEXPORT.finditer(text)):
        _convert((path.parent / m["path"]).resolve(), order, seen)
    order.append(path)


def _module(path: Path) -> str:
    """One module as a function of the notebook's host that returns its exports."""
    text = path.read_text(encoding="utf-8")
    here = path.parent
    exports: list[str] = []

    def imported(m: re.Match) -> str:
        return _bindings(m["what"], _key((here / m["path"]).resolve()))

    def reexported(m: re.Match) -> str:
        names = [n.strip() for n in m["names"].split(",") if n.strip()]
        exports.extend(n.split(" as ")[-1] for n in names)
        return _bindings("{" + ", ".join(names) + "}", _key((here / m["path"]).resolve()))

    def exported(m: re.Match) -> str:
        exports.append(m["name"])
        return f"{m['kind']} {m['name']}"

    def passed_on(m: re.Match) -> str:
        exports.extend(n.strip() for n in m["names"].split(",") if n.strip())
        return ""

    body = IMPORT.sub(imported, text)
    body = EXPORT.sub(exported, LOCAL_EXPORT.sub(passed_on, REEXPORT.sub(reexported, body)))
    if re.search(r"^export\b", body, re.M):
        raise ValueError(f"{path.name}: an export form the notebook bundle does not read")
    return (f"modules[{json.dumps(_key(path))}] = await (async (fetch, location, history) => {{\n"
            f"{body}\nreturn {{ {', '.join(exports)} }};\n}})(host.fetch, host.location, host.history);\n")


@functools.cache
def script() -> str:
    """Every module that host.js needs, in import order, as the body of one module script."""
    order: list[Path] = []
    _convert(HOST, order, set())
    shim = (Path(__file__).resolve().parent / "shim.js").read_text(encoding="utf-8")
    return shim + "const modules = {};\n" + "".join(_module(p) for p in order)


@functools.cache
def css() -> str:
    """The page's stylesheets, for a shadow root: what styles the page's <html> and <body> styles the host."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((STATIC / "css").glob("*.css")))
    return re.sub(r"(?<![\w.#-])(:root|html|body)(?![\w-])", ":host", text)


@functools.cache
def words(language: str = "en") -> dict[str, dict]:
    """Every content file of one language: what words.js would fetch, by file name ("inference")."""
    folder = STATIC / "content" / language
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
