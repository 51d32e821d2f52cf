"""Training a byte-level BPE vocabulary from scratch: the merges, in the order they are learned.

Byte pair encoding starts from the 256 byte values and repeats one move: find the pair of
neighbouring pieces that occurs most often in the corpus and glue it into a new piece.

    "the theatre" -> bytes t h e _ t h e a t r e
    most frequent pair ("t", "h") -> new token 256 "th":   th e _ th e a t r e
    most frequent pair ("th", "e") -> new token 257 "the": the _ the a t r e

Text is first cut into words with the same rule GPT-2 uses (spaces attach to the following
word, digits stand alone), so a merge never crosses a word boundary. We borrow that cutting
rule from the `tokenizers` library so that the tokenizer we export splits text exactly as
we trained it; the merging itself is this file's own code. Counting unique words once and
updating pair counts only for the words a merge touches keeps training to seconds.

"Character level" (`merges=0`) keeps the 256 bytes alone, for comparison: one token per
character for English, so sequences are several times longer.

References: Sennrich et al. 2016 "Neural Machine Translation of Rare Words with Subword
Units"; GPT-2 (Radford et al. 2019) for byte-level BPE; Karpathy's minbpe (the shape of
this file: get_stats, merge, train, encode, decode).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from tokenizers import pre_tokenizers

from prediction_machine.inference.tokenizer import byte_alphabet, tokenizer_json_from_vocab

# Control tokens for the chat format (finetune.py). They sit at the end of the vocabulary and
# are never produced from text: a user typing "<|end|>" gets ordinary tokens.
SPECIALS = ("<|user|>", "<|assistant|>", "<|end|>")


def get_stats(ids: list[int], counts: Counter | None = None, weight: int = 1) -> Counter:
    """Count neighbouring pairs. Example: [1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}."""
    counts = Counter() if counts is None else counts
    for pair in zip(ids, ids[1:], strict=False):
        counts[pair] += weight
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` by `new_id`. Example: [1, 2, 3, 1, 2], (1, 2), 9 -> [9, 3, 9]."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _splitter():
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )


def words(text: str) -> list[bytes]:
    """Cut text into words the GPT-2 way: "Hello, world" -> [b"Hello", b",", b" world"]."""
    back = {ord(c): b for b, c in byte_alphabet().items()}  # "Ġ" -> 32, then latin-1 gives the byte
    return [piece.translate(back).encode("latin-1") for piece, _ in _splitter().pre_tokenize_str(text)]


@dataclass(frozen=True)
class Merge:
    rank: int  # 0 for the first merge learned
    pair: tuple[int, int]  # the two token ids glued together
    new_id: int  # 256 + rank
    count: int  # how often the pair occurred when it was chosen
    left: bytes
    right: bytes

    def to_dict(self) -> dict:
        show = lambda b: b.decode("utf-8", errors="replace")  # noqa: E731
        return {"rank": self.rank, "left": show(self.left), "right": show(self.right),
                "token": show(self.left + self.right), "id": self.new_id, "count": self.count}


@dataclass
class BPE:
    merges: list[Merge] = field(default_factory=list)

    @property
    def vocab(self) -> list[bytes]:
        """Token id -> the bytes it stands for (specials not included)."""
        table = [bytes([b]) for b in range(256)]
        for m in self.merges:
            table.append(table[m.pair[0]] + table[m.pair[1]])
        return table

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges) + len(SPECIALS)

    # -- encoding with our own code (used to check the exported tokenizer agrees)

    def encode_word(self, word: bytes) -> list[int]:
        """Apply merges in the order they were learned: always the earliest-learned pair first."""
        ids = list(word)
        rank = {m.pair: m for m in self.merges}
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:], strict=False),
                       key=lambda p: rank[p].rank if p in rank else float("inf"))
            if pair not in rank:
                break  # subtle: no pair left that was ever merged, so the word is done
            ids = merge(ids, pair, rank[pair].new_id)
        return ids

    def encode(self, text: str) -> list[int]:
        return [i for w in words(text) for i in self.encode_word(w)]

    def decode(self, ids: list[int]) -> str:
        vocab = self.vocab
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")

    # -- export

    def tokenizer_json(self) -> str:
        """A `tokenizers` JSON that tokenizer.Tokenizer loads: same pieces, same merges, same ids."""
        alpha = byte_alphabet()
        show = lambda b: "".join(alpha[x] for x in b)  # noqa: E731
        vocab = self.vocab
        tokens = [show(b) for b in vocab] + list(SPECIALS)
        merges = [f"{show(vocab[m.pair[0]])} {show(vocab[m.pair[1]])}" for m in self.merges]
        specials = list(range(len(vocab), len(tokens)))
        return tokenizer_json_from_vocab(tokens, merges, specials)


def train(text: str, num_merges: int) -> Iterator[Merge]:
    """Learn `num_merges` merges from `text`, yielding each one as it is learned.

    Pair counts are kept for the whole corpus and updated only for the words a merge
    touches; each unique word is stored once with its frequency.
    """
    freq = Counter(words(text))
    pieces = [list(w) for w in freq]  # each unique word as a list of token ids
    weight = list(freq.values())
    stats: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> the words that contain it
    for wi, ids in enumerate(pieces):
        get_stats(ids, stats, weight[wi])
        for pair in zip(ids, ids[1:], strict=False):
            where[pair].add(wi)
    vocab = [bytes([b]) for b in range(256)]
    for rank in range(num_merges):
        if not stats:
            return  # every word is a single token already
        # Ties go to the smaller pair ids, so training is deterministic.
        pair = max(stats, key=lambda p: (stats[p], -p[0], -p[1]))
        count = stats[pair]
        if count < 2:
            return  # a pair seen once is not a pattern
        new_id = 256 + rank
        for wi in list(where.pop(pair, ())):
            old = pieces[wi]
            for p in zip(old, old[1:], strict=False):  # take the word's old pairs out of the counts...
                stats[p] -= weight[wi]
                if stats[p] <= 0:
                    del stats[p]
            new = merge(old, pair, new_id)
            pieces[wi] = new
            for p in zip(new, new[1:], strict=False):  # ... and put its new pairs in
                stats[p] += weight[wi]
                where[p].add(wi)
        stats.pop(pair, None)
        vocab.append(vocab[pair[0]] + vocab[pair[1]])
        yield Merge(rank, pair, new_id, count, vocab[pair[0]], vocab[pair[1]])


def train_bpe(text: str, vocab_size: int) -> BPE:
    """A full tokenizer of `vocab_size` ids (256 bytes + merges + the chat control tokens)."""
    if vocab_size < 256 + len(SPECIALS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIALS)} (bytes + control tokens)")
    return BPE(list(train(text, vocab_size - 256 - len(SPECIALS))))


def compression_ratio(text: str, n_tokens: int) -> float:
    """UTF-8 bytes per token: 1.0 for byte level, about 3-4 for a few thousand merges on English."""
    return len(text.encode("utf-8")) / max(n_tokens, 1)
