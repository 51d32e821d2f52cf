"""Text to tokens and back: byte-level BPE, as GPT-2, Llama 3 and SmolLM2 use it.

The tokenizer knows nothing about models. It turns a string into a list of `Token`s, each
carrying its id, its raw bytes, a display text and the characters of the input it covers.

Byte-level BPE in one paragraph: the text is cut into words (here digits are cut one by
one, the way SmolLM2 was trained), each word becomes its UTF-8 bytes, and learned merges
glue frequent neighbouring pieces together ("t"+"h" -> "th", "th"+"e" -> "the"). A piece can
be less than a character: an emoji is four bytes and may stay split in pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from tokenizers import AddedToken, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as _HFTokenizer


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable characters.

    Printable bytes stand for themselves; the others (space, control bytes...) are moved to
    code points from 256 up, so that every byte string is a readable string: " the" -> "Ġthe".
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@lru_cache(maxsize=1)
def byte_alphabet_inverse() -> dict[str, int]:
    return {c: b for b, c in byte_alphabet().items()}


def tokenizer_json_from_vocab(tokens: list[str], merges: list[str], special_ids: list[int]) -> str:
    """Build a `tokenizers` byte-level BPE from a vocabulary and merge list (as stored in a GGUF)."""
    bpe = models.BPE(
        vocab={tok: i for i, tok in enumerate(tokens)},
        merges=[tuple(m.split(" ", 1)) for m in merges],
    )
    tk = _HFTokenizer(bpe)
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in special_ids])
    return tk.to_str()


def merge_word(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """The BPE merge loop for one word: glue the neighbouring pair with the lowest rank, repeat.

    `pieces` starts as the word's bytes, one symbol each; `ranks` orders the learned merges
    (rank 0 was learned first, from the most frequent pair).

    >>> merge_word(list("these"), {("t", "h"): 0, ("th", "e"): 1, ("e", "s"): 2})
    ['the', 's', 'e']
    """
    pieces = list(pieces)
    while len(pieces) > 1:
        neighbours = zip(pieces, pieces[1:], strict=False)
        pairs = [(ranks.get(pair, len(ranks)), i) for i, pair in enumerate(neighbours)]
        rank, i = min(pairs)
        if rank == len(ranks):  # no neighbouring pair was ever learned: the word is done
            break
        # subtle: the leftmost copy of the best pair goes first
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


@dataclass(frozen=True)
class Token:
    id: int
    text: str  # what to display: the decoded piece, or <0xF0>-style bytes when it is part of a character
    bytes: bytes  # exactly the bytes this token stands for
    start: int  # first character of the input it covers (Python string index)
    end: int  # one past the last character it covers
    special: bool = False  # a control token such as <|im_start|>; never produced from user text
    partial: bool = False  # its bytes are only part of a character (emoji, CJK)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "bytes": self.bytes.hex(),
            "start": self.start,
            "end": self.end,
            "special": self.special,
            "partial": self.partial,
        }


class Tokenizer:
    def __init__(self, tokenizer_json: str):
        self.json = tokenizer_json
        self._tk = _HFTokenizer.from_str(tokenizer_json)
        added = self._tk.get_added_tokens_decoder()  # {id: AddedToken}
        self.special_ids = {i for i, t in added.items() if t.special}
        self.vocab_size = self._tk.get_vocab_size(with_added_tokens=True)
        self._byte_level = "ByteLevel" in tokenizer_json
        # Control tokens come only from code (chat.py), never from text: a user typing
        # "<|im_end|>" gets seven ordinary tokens, not the end of their turn.
        self._tk.encode_special_tokens = True
        self._alone: dict[int, Token] = {}  # token(i), made once per id

    # -- text -> ids

    def encode_ids(self, text: str) -> list[int]:
        """Plain text to ids. Text that merely looks like a control token stays plain text."""
        return self._tk.encode(text, add_special_tokens=False).ids

    def encode(self, text: str) -> list[Token]:
        enc = self._tk.encode(text, add_special_tokens=False)
        return [self._token(i, s, e) for i, (s, e) in zip(enc.ids, enc.offsets, strict=True)]

    def special_id(self, text: str) -> int:
        i = self._tk.token_to_id(text)
        if i is None or i not in self.special_ids:
            raise KeyError(f"{text!r} is not a control token of this tokenizer")
        return i

    # -- ids -> text

    def decode(self, ids: list[int], skip_special: bool = False) -> str:
        return self._tk.decode(list(ids), skip_special_tokens=skip_special)

    def token_bytes(self, i: int) -> bytes:
        piece = self._tk.id_to_token(i)
        if piece is None:
            raise KeyError(f"token id {i} is outside the vocabulary of {self.vocab_size}")
        if i in self.special_ids or not self._byte_level:
            return piece.encode("utf-8")
        inverse = byte_alphabet_inverse()
        return bytes(inverse[c] for c in piece)

    def token(self, i: int) -> Token:
        """A token seen on its own (as when the model generates it): no input offsets.

        Kept once made (Token is frozen): a served step shows its token and ten alternatives."""
        t = self._alone.get(i)
        if t is None:
            t = self._alone[i] = self._token(i, 0, 0)
        return t

    def _token(self, i: int, start: int, end: int) -> Token:
        raw = self.token_bytes(i)
        special = i in self.special_ids
        try:
            text, partial = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            text, partial = "".join(f"<0x{b:02X}>" for b in raw), True
        return Token(i, text, raw, start, end, special, partial)


class StreamDecoder:
    """Turn ids into text one at a time without ever emitting half a character.

    Byte tokens of an emoji arrive one per step; the text is held back until the bytes
    complete a character, so the concatenated stream equals a one-shot decode.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tok = tokenizer
        self.pending = b""

    def push(self, i: int) -> str:
        self.pending += self.tok.token_bytes(i)
        try:
            text = self.pending.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start > 0:  # emit the complete prefix, keep the unfinished tail
                text, self.pending = self.pending[: e.start].decode("utf-8"), self.pending[e.start :]
                return text
            if len(self.pending) >= 4 or e.reason != "unexpected end of data":
                text, self.pending = self.pending.decode("utf-8", errors="replace"), b""
                return text
            return ""
        self.pending = b""
        return text

    def flush(self) -> str:
        text, self.pending = self.pending.decode("utf-8", errors="replace"), b""
        return text
