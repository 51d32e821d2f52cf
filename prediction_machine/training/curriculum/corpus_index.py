"""Where did it learn that? A suffix array over the training text, and a memorisation score.

A suffix array lists every position of the text in the alphabetical order of the text that
starts there. All the places where a string occurs then sit next to each other in that list,
so a binary search finds them, and the longest prefix of any string that occurs somewhere in
the corpus is shared with one of the two neighbours of the place where the string would be:

    text "banana"      suffixes sorted: a  ana  anana  banana  na  nana
    sa = [5, 3, 1, 0, 4, 2]                "nan" would sit between na and nana: 3 letters match

Built once per corpus by prefix doubling (sort by the first 1, 2, 4, 8 ... characters, numpy
does each sort), cached on disk beside the corpus's token ids. Lookups are binary searches.

The memorisation score of a text is the share of its 8-word sequences (lower-cased words)
that occur word for word in the training text. Real text the model never saw (the held-out
end of the corpus) scores a few per cent by chance: common phrases. That is the baseline.

Reference: Manber & Myers 1990, "Suffix arrays: a new method for on-line string searches";
Carlini et al. 2021 measure memorisation by verbatim matches in the training data, as here.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from prediction_machine import limits
from prediction_machine.model import weights
from prediction_machine.training.curriculum.corpus import Corpus

NGRAM = 8  # words per sequence in the memorisation score
MIN_MATCH = 12  # characters: a shorter match is a common word or two, not a quotation
MAX_MATCHES = 5  # longest matches reported per text
MAX_TEXT = limits.MAX_SOURCE_TEXT  # characters a lookup reads (declared in limits.py)
_WORD = re.compile(r"[a-z0-9']+")


def suffix_array(text: str) -> np.ndarray:
    """Every position of `text`, sorted by the text that starts there (prefix doubling). -> (N,) int32

    >>> suffix_array("banana").tolist()
    [5, 3, 1, 0, 4, 2]
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)  # (N,)
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    _, rank = np.unique(codes, return_inverse=True)  # (N,) rank by the first character
    k = 1
    while True:
        second = np.zeros(n, dtype=np.int64)  # (N,) rank of the suffix k further on; 0 = past the end
        second[: n - k] = rank[k:] + 1
        key = rank * (n + 1) + second  # (N,) orders by (first k characters, next k characters)
        sa = np.argsort(key, kind="stable")  # (N,)
        step = np.empty(n, dtype=np.int64)
        step[0] = 0
        step[1:] = np.cumsum(key[sa][1:] != key[sa][:-1])  # (N-1,) a new rank where the key changes
        rank = np.empty(n, dtype=np.int64)
        rank[sa] = step
        if step[-1] == n - 1 or k >= n:  # every suffix has a rank of its own: sorted
            return sa.astype(np.int32)
        k *= 2


def words(text: str) -> list[str]:
    """>>> words("Now, fair Hippolyta!")
    ['now', 'fair', 'hippolyta']
    """
    return _WORD.findall(text.lower())


def ngram_hashes(ws: list[str], n: int = NGRAM) -> np.ndarray:
    """A 64-bit fingerprint of every n-word sequence. -> (len(ws) - n + 1,) uint64"""
    if len(ws) < n:
        return np.zeros(0, dtype=np.uint64)
    h = np.array([int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in ws],
                 dtype=np.uint64)  # (W,) one fingerprint per word
    out = np.zeros(len(ws) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the hash
        for j in range(n):
            out = out * np.uint64(1_000_003) + h[j: len(ws) - n + 1 + j]
    return out


@dataclass(frozen=True)
class Match:
    start: int  # where the match begins in the looked-up text (characters)
    length: int  # characters matched word for word
    text: str
    position: int  # where it begins in the training text
    count: int  # how many times the training text holds it
    source: str  # the play (or "your text")
    line: int  # line number in that play (1-based)
    speaker: str | None
    lines: list[str]  # the training text's lines that hold the match

    def to_dict(self) -> dict:
        return self.__dict__.copy()


class CorpusIndex:
    """The training text of one corpus, its suffix array, its 8-gram fingerprints and its sources."""

    def __init__(self, corpus: Corpus, sources: list[tuple[str, int]] | None = None):
        self.name = corpus.name
        self.text = corpus.train
        self.sources = sources or [(corpus.name, 0)]  # (title, where it starts in the text), in order
        self._starts = [s for _, s in self.sources]
        t0 = time.perf_counter()
        key = hashlib.sha256(self.text.encode()).hexdigest()[:20]
        cached = weights.cache_dir() / f"corpus-index-{key}.npz"
        try:
            with np.load(cached) as f:
                self.sa, self.grams = f["sa"], f["grams"]
            self.cached = True
        except (OSError, ValueError, KeyError):
            self.sa = suffix_array(self.text)
            self.grams = np.unique(ngram_hashes(words(self.text)))  # sorted
            weights.atomic_write_bytes(
                cached, lambda t: np.savez(open(t, "wb"), sa=self.sa, grams=self.grams))
            self.cached = False
        self.build_seconds = time.perf_counter() - t0
        self.baseline = self.memorisation(corpus.val)["score"] if corpus.val else None
        self.held_out_words = len(words(corpus.val))

    # ------------------------------------------------------------------------- lookups

    def _suffix(self, i: int, n: int) -> str:
        p = int(self.sa[i])
        return self.text[p: p + n]

    def _range(self, s: str) -> tuple[int, int]:
        """The suffix array's slice [lo, hi) of the suffixes that start with `s`."""
        n = len(s)
        lo = bisect.bisect_left(range(len(self.sa)), s, key=lambda i: self._suffix(i, n))
        hi = bisect.bisect_right(range(len(self.sa)), s, key=lambda i: self._suffix(i, n))
        return lo, hi

    def longest_at(self, query: str) -> tuple[int, int]:
        """The longest prefix of `query` that occurs in the training text: (length, a position of it)."""
        n = len(query)
        i = bisect.bisect_left(range(len(self.sa)), query, key=lambda j: self._suffix(j, n))
        best = (0, 0)
        for j in (i - 1, i):  # the longest common prefix is shared with a neighbour
            if 0 <= j < len(self.sa):
                other = self._suffix(j, n)
                k = 0
                while k < len(other) and other[k] == query[k]:
                    k += 1
                best = max(best, (k, int(self.sa[j])))
        return best

    def matches(self, text: str, min_chars: int = MIN_MATCH, limit: int = MAX_MATCHES) -> list[Match]:
        """The longest verbatim matches of `text` in the training text, longest first, not overlapping."""
        text = text[:MAX_TEXT]
        found = [(*self.longest_at(text[i:]), i) for i in range(len(text))
                 if i == 0 or not text[i - 1].isalnum()]  # matches start at a word's beginning
        found.sort(key=lambda t: (-t[0], t[2]))
        taken: list[tuple[int, int]] = []
        out = []
        for length, pos, start in found:
            if length < min_chars or len(out) >= limit:
                break
            end = start + length
            if end < len(text) and text[end].isalnum():  # cut back to the end of the last whole word
                length = max((j + 1 - start for j in range(start, end) if not text[j].isalnum()), default=0)
                if length < min_chars:
                    continue
            if any(start < e and s < start + length for s, e in taken):
                continue
            taken.append((start, start + length))
            out.append(self.describe(text[start: start + length], start, pos))
        return out

    def describe(self, s: str, start: int, pos: int) -> Match:
        lo, hi = self._range(s)
        k = bisect.bisect_right(self._starts, pos) - 1
        title, begins = self.sources[k]
        line = self.text.count("\n", begins, pos) + 1
        first = self.text.rfind("\n", 0, pos) + 1
        last = self.text.find("\n", pos + len(s))
        block = self.text.rfind("\n\n", begins, pos)  # a speech starts after a blank line
        head = self.text[block + 2 if block >= 0 else begins:].split("\n", 1)[0]
        speaker = head[:-1] if head.endswith(":") and len(head) < 60 else None
        lines = self.text[first: last if last >= 0 else len(self.text)].split("\n")[:6]
        return Match(start, len(s), s, pos, hi - lo, title, line, speaker, lines)

    def memorisation(self, text: str) -> dict:
        """The share of `text`'s 8-word sequences that occur word for word in the training text."""
        grams = ngram_hashes(words(text))
        if len(grams) == 0:
            return {"score": None, "ngrams": 0, "found": 0}
        i = np.searchsorted(self.grams, grams).clip(max=len(self.grams) - 1)  # (G,)
        found = int((self.grams[i] == grams).sum())
        return {"score": found / len(grams), "ngrams": len(grams), "found": found}

    def source(self, text: str) -> dict:
        """Everything "where did it learn that" shows for one text."""
        t0 = time.perf_counter()
        out = {"matches": [m.to_dict() for m in self.matches(text)], "memorisation": self.memorisation(text),
               "baseline": {"score": self.baseline, "words": self.held_out_words,
                            "what": f"the held-out end of {self.name}: real text the model never trained on"}}
        out["corpus"] = {"name": self.name, "chars": len(self.text), "build_seconds": self.build_seconds,
                         "cached": self.cached, "ngram": NGRAM, "min_match": MIN_MATCH}
        out["lookup_ms"] = (time.perf_counter() - t0) * 1000
        return out


# ----------------------------------------------------------------------------- the index of a model's corpus

_indexes: dict[str, CorpusIndex] = {}
_lock = threading.Lock()


def shakespeare_index(max_chars: int | None = None) -> CorpusIndex:
    """The index of the plays (as pre-training read them: the train split), built once per process."""
    from prediction_machine.training.curriculum.corpus import shakespeare, shakespeare_plays

    key = f"shakespeare:{max_chars}"
    with _lock:
        if key not in _indexes:
            sources, at = [], 0
            for title, body in shakespeare_plays():
                sources.append((title, at))
                at += len(body) + 1  # joined by "\n"
            _indexes[key] = CorpusIndex(shakespeare(max_chars), sources)
        return _indexes[key]


def text_index(corpus: Corpus) -> CorpusIndex:
    """The index of a learner's own text (kept per process, by its content)."""
    key = "text:" + hashlib.sha256(corpus.train.encode()).hexdigest()
    with _lock:
        if key not in _indexes:
            if len(_indexes) > 4:  # learners' texts: a few at most stay in memory
                _indexes.pop(next(k for k in _indexes if k.startswith("text:")), None)
            _indexes[key] = CorpusIndex(corpus)
        return _indexes[key]


NO_CORPUS = ("{model} was pre-trained by its makers on about 2 trillion tokens of web pages, code and maths "
             "that do not ship with it: with no training text here, nothing can show where its answers came "
             "from; only the tiny models this project trained itself, on text it holds, can be traced")


def index_for(folder, depth: int = 0) -> CorpusIndex:
    """The index of the text a checkpoint was pre-trained on: the plays, a cut of them, or the
    learner's own text (corpus.txt). A fine-tuned run follows its `base` back to the pre-training
    run. A model whose pre-training text this project does not hold is a ValueError (NO_CORPUS)."""
    from pathlib import Path

    from prediction_machine.model import models
    from prediction_machine.training.curriculum import checkpoint, runs
    from prediction_machine.training.curriculum.corpus import user_text

    name = str(folder)
    if name in models.SHIPPED:
        return shakespeare_index()  # the three shipped models: shakespeare-base's recipe reads every play
    path = checkpoint.files(Path(folder))
    record = checkpoint.read_record(path)
    if (record is None and depth > 0) or depth > 4:
        raise ValueError(f"the model {models.shown_name(name)}, which a fine-tuned run started from, is not "
                         "on disk any more, so the text it was trained on is unknown")
    if record is None:
        raise ValueError(NO_CORPUS.format(model=models.shown_name(name)))
    if record.get("kind") in ("finetune", "dpo"):
        base = str(record.get("base") or "")
        found = runs.find_checkpoint(base) if base in runs.SHIPPED or "/" not in base else None
        return index_for(base if base in models.SHIPPED else (found or base), depth + 1)
    if record.get("kind") != "pretrain":
        raise ValueError(NO_CORPUS.format(model=models.shown_name(name)))
    if (Path(folder) / "corpus.txt").is_file():
        return text_index(user_text((Path(folder) / "corpus.txt").read_text(encoding="utf-8")))
    return shakespeare_index((record.get("config") or {}).get("corpus_chars"))
