"""Where did it learn that: the suffix array, verbatim matches with their source, the memorisation score,
the nearest fine-tuning data, the CLI and the API.

A small corpus with a planted sentence stands in for the plays where the plays are not needed; the
plays' own index (built once, about 10 s, then cached on disk) serves the API test.
"""

from __future__ import annotations

import json
import random

import pytest
from conftest import make_app
from fastapi.testclient import TestClient

from prediction_machine.cli import main
from prediction_machine.training.curriculum import corpus_index as ci
from prediction_machine.training.curriculum import nearest_examples as ne
from prediction_machine.training.curriculum.corpus import Corpus, shakespeare

PLANTED = "The purple walrus sings of lanterns under the frozen harbour."


def test_the_suffix_array_sorts_every_suffix():
    text = "mississippi banana " * 7
    assert ci.suffix_array(text).tolist() == sorted(range(len(text)), key=lambda i: text[i:])


@pytest.fixture(scope="module")
def small():
    """A quarter of a million characters of the plays, with one planted sentence in the second 'play'."""
    plays = shakespeare(250_000).train
    cut = plays.index("\n", 120_000) + 1
    text = plays[:cut] + PLANTED + "\n" + plays[cut:]
    sources = [("First", 0), ("Second", 100_000)]
    return ci.CorpusIndex(Corpus("test", text, shakespeare(400_000).val), sources)


def test_a_planted_sentence_is_found_with_its_position_and_line(small):
    found = small.matches("and then " + PLANTED + " so it goes")
    best = found[0]
    assert best.text.strip() == PLANTED and best.count == 1
    assert small.text[best.position: best.position + best.length] == best.text
    assert best.position == small.text.index(PLANTED) - (len(best.text) - len(best.text.lstrip()))
    assert best.source == "Second" and best.line == small.text.count("\n", 100_000, best.position) + 1
    assert PLANTED in best.lines


def test_memorisation_of_a_training_passage_is_one_and_of_shuffled_words_near_the_baseline(small):
    lines = small.text[50_000:52_000].split("\n")[1:-1]  # whole lines of training text
    passage = "\n".join(lines)
    assert small.memorisation(passage)["score"] == 1.0
    shuffled = passage.split()
    random.Random(0).shuffle(shuffled)
    score = small.memorisation(" ".join(shuffled))["score"]
    assert small.baseline is not None and abs(score - small.baseline) < 0.02


def test_a_lookup_of_200_characters_is_fast(small):
    import time

    text = small.text[80_000:80_200]
    small.source(text)
    t0 = time.perf_counter()
    out = small.source(text)
    assert out["matches"][0]["length"] >= 150
    assert time.perf_counter() - t0 < 0.5  # 100 ms on an idle machine (bench/bench_inside.py); slack for load


def test_the_nearest_data_and_the_wording_of_a_question():
    seen = ne.nearest("Who is Hamlet's mother?", "Gertrude, the Queen of Denmark.")
    assert seen["wording"] == "seen" and seen["conversations"][0]["user"] == "Who is Hamlet's mother?"
    assert ne.nearest("Who was Hamlet's mother, then?")["wording"] == "reworded"
    new = ne.nearest("Who is Hero's father?", "Prospero, the rightful Duke of Milan.")
    assert new["wording"] == "new"
    assert "Miranda" in new["conversations"][0]["user"]  # the conversation its made-up answer copies
    assert "IDF" in new["measure"]


def test_smollm2_is_refused_with_the_reason(capsys):
    assert main(["source", "Hello there", "--model", "smollm2-135m-instruct"]) == 2
    assert "2 trillion tokens" in capsys.readouterr().err
    assert main(["source", "x" * 2001]) == 2
    assert "the limit is 2000" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app(), base_url="http://127.0.0.1") as c:
        yield c


def test_the_api_finds_a_quoted_line_of_the_plays(client):
    line = "Now is the winter of our discontent\nMade glorious summer by this sun of York;"
    r = client.post("/api/curriculum/source", json={"text": line, "model": "shakespeare-base"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["matches"][0]["source"] == "Richard III" and body["matches"][0]["speaker"] == "Gloucester"
    assert body["memorisation"]["score"] == 1.0 and body["baseline"]["score"] < 0.05
    r = client.post("/api/curriculum/source", json={"text": "Gertrude.", "model": "shakespeare-chat",
                                                    "question": "Who is Hamlet's mother?"})
    assert r.status_code == 200 and r.json()["nearest"]["wording"] == "seen"
    r = client.post("/api/curriculum/source", json={"text": "Hi", "model": "smollm2-135m-instruct"})
    assert r.status_code == 422 and r.json()["error"].startswith("model: smollm2")


def test_the_cli_prints_matches(capsys):
    assert main(["source", "Now is the winter of our discontent", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["matches"][0]["source"] == "Richard III"
