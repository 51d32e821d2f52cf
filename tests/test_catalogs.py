"""Every language says everything English says, and nothing English no longer says.

The page's words live in static/content/<language>/<section>.json (lib/words.js). English is the source;
each translation must have exactly its files and keys, so a sentence added in English and not yet
translated fails here (the page would show it in English meanwhile), and so does a key English dropped.
A translated text may leave out a {slot} English fills (a sentence can be turned around without it) but
never invent one, keeps the spaces a fragment is glued with (or leaves the fragment empty), and keeps
index.html's inline elements (<strong>, <a>) in English's order, since each takes the attributes of the
HTML's own element in turn.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "prediction_machine" / "web" / "static"
CONTENT = STATIC / "content"
PLURAL_FORMS = {"zero", "one", "two", "few", "many", "other"}
# Fields of a tour stop that name an element on the page: the same in every language.
TOUR_IDS = {"stop", "watch", "look_at"}
# glossary.json's "names": the word each term shows in a language, where it is not the English term.
NAMES = ("glossary", "names")


def load(language: str) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (CONTENT / language).glob("*.json")}


TRANSLATIONS = sorted(p.name for p in CONTENT.iterdir() if p.is_dir() and p.name != "en")


def slots(text) -> set[str]:
    forms = text.values() if isinstance(text, dict) else [text]
    return {name for form in forms for name in re.findall(r"\{(\w+)\}", form)}


def compare(where: str, en, other, problems: list[str]) -> None:
    """Walk English and a translation side by side, noting every difference in shape."""
    if isinstance(en, str) or (isinstance(en, dict) and set(en) <= PLURAL_FORMS):
        if isinstance(en, dict) or isinstance(other, dict):
            if not isinstance(other, dict) or "other" not in other or not set(other) <= PLURAL_FORMS:
                problems.append(f"{where}: plural forms need 'other' and only {sorted(PLURAL_FORMS)}")
                return
        elif not isinstance(other, str):
            problems.append(f"{where}: English has a text, the translation a {type(other).__name__}")
            return
        if invented := slots(other) - slots(en):
            problems.append(f"{where}: slots English does not fill: {sorted(invented)}")
        for form in other.values() if isinstance(other, dict) else [other]:
            first = en if isinstance(en, str) else en["other"]
            if form and (first[:1] == " " != form[:1] or first[-1:] == " " != form[-1:]):
                problems.append(f"{where}: English is a fragment glued with a space; keep it ({form!r})")
    elif isinstance(en, dict):
        missing, extra = set(en) - set(other), set(other) - set(en)
        if missing:
            problems.append(f"{where}: missing {sorted(missing)}")
        if extra:
            problems.append(f"{where}: English no longer has {sorted(extra)}")
        for key in set(en) & set(other):
            compare(f"{where}.{key}", en[key], other[key], problems)
    elif isinstance(en, list):
        if len(en) != len(other):
            problems.append(f"{where}: {len(en)} items in English, {len(other)} here")
            return
        for i, (a, b) in enumerate(zip(en, other, strict=True)):
            if {k: a.get(k) for k in TOUR_IDS} != {k: b.get(k) for k in TOUR_IDS}:
                problems.append(f"{where}[{i}]: a tour stop names other elements than English's")
            compare(f"{where}[{i}]", a, b, problems)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_a_translation_has_every_key_english_has_and_no_other(language):
    english, other = load("en"), load(language)
    problems = [f"{name}.json is missing" for name in set(english) - set(other)]
    problems += [f"{name}.json is not one of English's files" for name in set(other) - set(english)]
    for name in set(english) & set(other):
        names = other[name].pop(NAMES[1], None) if name == NAMES[0] else None
        compare(f"{language}/{name}", english[name], other[name], problems)
        terms = {t.lower() for t in english[name].get("terms", {})}
        if names and (unknown := {n for n in names if n.lower() not in terms}):
            problems.append(f"{language}/glossary.names: not glossary terms: {sorted(unknown)}")
    assert not problems, "\n".join(sorted(problems))


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_index_html_inline_elements_keep_their_order(language):
    english, other = load("en")["index"], load(language)["index"]
    tags = lambda text: re.findall(r"<(\w+)>", text)  # noqa: E731
    moved = [key for key in set(english) & set(other) if tags(english[key]) != tags(other[key])]
    assert not moved, f"{language}/index.json: inline elements differ from English's in {sorted(moved)}"


class Marked(HTMLParser):
    """index.html's data-words elements, each with its text as index.json writes it."""

    def __init__(self):
        super().__init__()
        self.open: list[list] = []  # per open element: [its data-words key or None, its text so far]
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        for element in self.open:
            element[1] += f"<{tag}>"
        self.open.append([dict(attrs).get("data-words"), ""])
        if label := dict(attrs).get("data-words-label"):
            self.found[label] = dict(attrs).get("aria-label", "")

    def handle_endtag(self, tag):
        key, text = self.open.pop()
        if key:
            self.found[key] = re.sub(r"\s+", " ", text).strip()
        for element in self.open:
            element[1] += f"</{tag}>"

    def handle_data(self, data):
        for element in self.open:
            element[1] += data


def test_index_html_and_its_english_file_say_the_same():
    marked = Marked()
    marked.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    english = load("en")["index"]
    assert set(marked.found) == set(english), "index.html's data-words keys and en/index.json differ"
    differ = [key for key, text in marked.found.items() if english[key] != text]
    assert not differ, f"index.html and en/index.json say different things for {differ}"


def test_the_picker_offers_exactly_the_languages_with_words():
    source = (STATIC / "js" / "lib" / "language.js").read_text(encoding="utf-8")
    table = re.search(r"LANGUAGES = \{(.*?)\n\};", source, re.S).group(1)
    assert set(re.findall(r"^\s+(\w+): \{", table, re.M)) == {"en", *TRANSLATIONS}
