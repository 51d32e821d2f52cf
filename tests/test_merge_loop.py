"""The page's tokenizer figure links merge_word: it must give the library's ids, word by word."""

import json

import pytest

from prediction_machine.inference.tokenizer import merge_word

TEXTS = [
    "The cat sat on the mat.",
    "Who is Hamlet's mother?",
    "tokenization   of 2024 numbers\n\nand CRLF\r\n",
    "naïve café, 東京, 🤖",
]


def test_hand_worked_example():
    ranks = {("t", "h"): 0, ("th", "e"): 1, ("e", "s"): 2}
    assert merge_word(list("these"), ranks) == ["the", "s", "e"]
    assert merge_word(list("xyz"), ranks) == ["x", "y", "z"]
    assert merge_word([], ranks) == []


@pytest.mark.parametrize("text", TEXTS)
def test_merge_loop_matches_the_library(lm, text):
    spec = json.loads(lm.tokenizer.json)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    ranks = {pair: r for r, pair in enumerate(merges)}
    vocab = spec["model"]["vocab"]
    words = lm.tokenizer._tk.pre_tokenizer.pre_tokenize_str(text)  # [(byte-level word, offsets)]
    ours = [vocab[piece] for word, _ in words for piece in merge_word(list(word), ranks)]
    assert ours == lm.tokenizer.encode_ids(text)
