"""The page's words live in content files, not in JavaScript.

Every sentence a section shows is in static/content/<language>/<section>.json, keyed by name, and the JS
asks for it with say("key") (static/js/lib/words.js). These tests keep it that way:

- no JS string or template literal reads as prose: a literal with a run of three or more words is allowed
  only up to 32 characters (a button label, a console note), or when it is text the model reads (an example
  prompt), listed below;
- every say("key") a module uses is in its section's content file, and every key there is used;
- a text with plural forms has the "other" form every language's plural rules fall back to;
- page JS lines stay within 110 characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static"
JS = STATIC / "js"
CONTENT = STATIC / "content" / "en"
LONGEST_PROSE = 32
# Text the model reads is data, not the lesson's words: a translated page still asks the model the same.
MODEL_INPUTS = {
    "Who is Hamlet's mother?",
    "How do I kill a Python process?",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Once upon a time, in a small village by the sea,",
    "Say hello in Japanese: こんにちは 🙂",
    "The animal didn't cross the street because it was too tired.",
}
# Keys read as whole lists or tables (lib/tour.js, lib/glossary.js) rather than through say("key").
READ_WHOLE = {"tour", "tour_skip", "terms", "questions"}
PROSE = re.compile(r"[A-Za-z][a-z’']*(?: [A-Za-z][a-z’']*){2,}")


def literals(src: str) -> list[str]:
    """The text of every string and template literal in JS source (a template's ${...} parts left out).

    A small scanner: it skips comments and regex literals, and follows templates nested in ${...}.
    'a' + `b ${x ? "c" : "d"} e` -> ["a", "c", "d", "b {} e"]
    """
    out: list[str] = []
    stack: list[list] = []  # per open ${...}: [brace depth, the template's text so far]
    i, n, prev = 0, len(src), ""
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
        elif src.startswith("//", i):
            i = src.find("\n", i) if "\n" in src[i:] else n
        elif src.startswith("/*", i):
            i = src.index("*/", i) + 2
        elif c in "'\"":
            j = i + 1
            while src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i + 1 : j])
            i, prev = j + 1, "a"
        elif c == "`" or (c == "}" and stack and stack[-1][0] == 0):
            text = stack.pop()[1] + "{}" if c == "}" else ""
            j = i + 1
            while True:
                if src[j] == "\\":
                    text += src[j : j + 2]
                    j += 2
                elif src[j] == "`":
                    out.append(text)
                    j += 1
                    break
                elif src.startswith("${", j):
                    stack.append([0, text])
                    j += 2
                    break
                else:
                    text += src[j]
                    j += 1
            i, prev = j, "a"
        elif c == "/" and (prev == "" or prev in "(,=:[!&|?{};+-*%<>~^" or prev == "kw"):
            j, in_class = i + 1, False  # a regex literal
            while src[j] != "/" or in_class:
                in_class = (in_class or src[j] == "[") and src[j] != "]"
                j += 2 if src[j] == "\\" else 1
            i, prev = j + 1, "a"
        else:
            if stack and c == "{":
                stack[-1][0] += 1
            elif stack and c == "}":
                stack[-1][0] -= 1
            word = re.match(r"[A-Za-z_$][\w$]*", src[i : i + 60])
            if word:
                prev = "kw" if word.group() in ("return", "typeof", "case", "of", "in", "else") else "a"
                i += word.end()
            else:
                prev, i = c, i + 1
    return out


def modules() -> list[Path]:
    return sorted(JS.rglob("*.js"))


def test_the_scanner_finds_literals_in_templates_and_skips_comments_and_regexes():
    src = 'const a = "one two three"; // "not this"\nconst r = /"x"/g;\nconst t = `b ${x ? "c d e" : `f`} g`;'
    assert literals(src) == ["one two three", "c d e", "f", "b {} g"]


def test_no_prose_in_javascript():
    prose = [
        (path.relative_to(JS).as_posix(), text)
        for path in modules()
        for text in literals(path.read_text(encoding="utf-8"))
        if PROSE.search(text) and len(text) > LONGEST_PROSE and text not in MODEL_INPUTS
    ]
    assert prose == [], "sentences belong in static/content/en/<section>.json, asked for with say(key)"


def catalogs() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in CONTENT.glob("*.json")}


def test_every_content_file_the_page_loads_exists():
    names = re.search(r"CONTENT = \[([^\]]*)\]", (JS / "lib" / "words.js").read_text(encoding="utf-8")).group(
        1
    )
    assert set(re.findall(r'"(\w+)"', names)) == set(catalogs())


def test_every_key_a_module_asks_for_is_in_its_section_file_and_every_key_is_used():
    found = catalogs()
    used: dict[str, set[str]] = {name: set() for name in found}
    for path in modules():
        if path.name == "words.js":
            continue  # it defines say; its comments show how it is called
        src = path.read_text(encoding="utf-8")
        section = re.search(r'const say = words\("(\w+)"\)', src)
        if not section:
            assert "say(" not in src, f"{path.name} says words without naming its section"
            continue
        keys = set(re.findall(r'\bsay\("(\w+)"', src))
        missing = keys - set(found[section.group(1)])
        assert not missing, f"{path.name} asks {section.group(1)}.json for keys it lacks: {sorted(missing)}"
        # A key may also be chosen in code before it is asked for: say(done ? "finished" : "paused").
        used[section.group(1)] |= keys | (set(literals(src)) & set(found[section.group(1)]))
    # index.html asks for its own words with data-words attributes (lib/words.js fills them in).
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    used["index"] = set(re.findall(r'data-words(?:-label)?="(\w+)"', html))
    for name, catalog in found.items():
        unused = set(catalog) - used[name] - READ_WHOLE
        assert not unused, f"{name}.json has keys no module uses: {sorted(unused)}"


def test_plural_texts_have_the_other_form_and_tour_stops_are_complete():
    for name, catalog in catalogs().items():
        for key, text in catalog.items():
            if isinstance(text, dict) and key not in READ_WHOLE:
                assert "other" in text and set(text) <= {"zero", "one", "two", "few", "many", "other"}, (
                    name,
                    key,
                )
        for stop in catalog.get("tour", []):
            assert {"stop", "label", "title", "text"} <= set(stop), (name, stop)


def test_every_tour_stop_is_a_name_some_figure_marks():
    marked = {
        m
        for path in modules()
        for m in re.findall(r'"data-tour-stop": [`"]?([\w-]+)', path.read_text(encoding="utf-8"))
    }
    # Names built from a variable: a playground picker's id, a slider's name, a stat's key, a stage's id.
    marked |= {
        m
        for m in re.findall(
            r'add\("\w+", "([\w-]+)"',
            (JS / "figures" / "backprop-playground-controls.js").read_text(encoding="utf-8"),
        )
    }
    marked |= {"temperature", "top_k", "top_p", "min_p", "train-loss"}
    marked |= {
        f"stage-{s}"
        for s in ("tokenizer", "embedding", "transformer", "prediction", "sampling", "generation")
    }
    named = {
        stop.get(field)
        for catalog in catalogs().values()
        for stop in catalog.get("tour", []) + catalog.get("tour_skip", [])
        for field in ("stop", "watch", "look_at", "keep_clear")
    } - {None}
    assert named - marked == set(), "a tour names a stop no figure marks with data-tour-stop"


def test_page_javascript_lines_fit_in_110_columns():
    long = [
        f"{path.relative_to(JS)}:{i}"
        for path in modules()
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if len(line) > 110
    ]
    assert long == []
