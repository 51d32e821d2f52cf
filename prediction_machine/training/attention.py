"""Self-attention, made inspectable: which earlier tokens (and words) each position reads.

Everything here is computed from a real forward pass (tracing.trace); nothing is simulated.

- `explain(lm, text)`: tokens, their words, the traced weights; `word_matrix(...)`: the word view.
- `score_breakdown(...)`: one query row of one head rebuilt step by step from the model's
  own weights (q . k, / sqrt(head_dim), causal mask, softmax), checked against the trace.
- `views(lm, text, ...)`: what the explorer draws: selected maps, head/layer means, grid, breakdown.
- Heads with a measurable habit (previous token, first token, induction, "it" -> its
  referent) are found in attention_heads.py, by measuring on the EXAMPLES sentences here.

References: "Attention Is All You Need" (Vaswani et al. 2017) for scaled dot-product
attention; Clark et al. 2019, "What Does BERT Look At?" for previous-token heads and heads
that park attention on a fixed token; Xiao et al. 2023, "Efficient Streaming Language Models
with Attention Sinks" for first-token sinks; Olsson et al. 2022, "In-context Learning and
Induction Heads" for induction heads; Vig 2019 (bertviz) for the word/head/model views.

Shape letters: L layers, H query heads, K key/value heads, T tokens, W words, hd head_dim, D d_model.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass

import torch

from prediction_machine.inference.tokenizer import Token
from prediction_machine.memo import Memo
from prediction_machine.model import tracing
from prediction_machine.model.transformer import Transformer, apply_rope

# The explorer's sentences. The first two differ only in a word after "it": the causal mask
# means that nothing at "it" can differ between them (prominent_heads measures that).
EXAMPLES: list[dict] = [
    {"text": "The animal didn't cross the street because it was too tired.",
     "note": "what does “it” refer to?"},
    {"text": "The animal didn't cross the street because it was too wide.",
     "note": "one word changed, after “it”: can the model know?"},
    {"text": "The trophy didn't fit in the suitcase because it was too big.",
     "note": "another “it” puzzle"},
    {"text": "The keys to the old wooden cabinet are on the kitchen table.",
     "note": "“are” agrees with “keys”, far back"},
    {"text": "Anna met Boris in Paris. Later, Anna met Boris in Rome.",
     "note": "a repeated phrase"},
    {"text": "Unbelievably, the chrysanthemums outlasted the thermostat.",
     "note": "long words split into several tokens"},
]
MAX_TOKENS = 96  # the explorer's longest sentence: 30 x 9 heads x 96^2 weights stay a few MB
REFERENT_EXAMPLE = 0  # the sentence in which "it" -> "animal" is measured
REFERENT_CONTRAST = 1  # the same sentence ending in "wide"


# ----------------------------------------------------------------------------- words


@dataclass(frozen=True)
class Word:
    text: str  # the word as it appears in the input (with its leading space, if any)
    tokens: list[int]  # positions of its tokens, in order
    start: int  # first character of the input it covers
    end: int  # one past its last character


def _first_char(tok: Token) -> str:
    return tok.bytes.decode("utf-8", errors="ignore")[:1]


def _last_char(tok: Token) -> str:
    return tok.bytes.decode("utf-8", errors="ignore")[-1:]


def _is_word_char(c: str) -> bool:
    return c != "" and (c.isalnum() or unicodedata.category(c).startswith("M"))


def starts_word(tok: Token, prev: Token | None) -> bool:
    """The grouping rule: does this token begin a new word, or continue the one before it?

    A token starts a new word when
      - it is the first token, or
      - it begins with whitespace (" animal", "\\n"), or
      - the token before it ended in whitespace ("\\n" then "New"), or
      - it begins with punctuation or a symbol (".", ","), except an apostrophe that
        continues a word ("didn" + "'t" stays "didn't"), or
      - it begins with a letter or digit but the token before ended in punctuation ("(" + "hi").
    Otherwise it continues the word: "Un" + "belie" + "v" + "ably" is one word, and so is "1" "2" "3".
    A token holding the middle bytes of one character (part of an emoji) always continues.

    Example: tokens "The", " animal", " didn", "'t", "." -> words "The", " animal", " didn't", "."
    """
    if prev is None:
        return True
    if tok.bytes and 0x80 <= tok.bytes[0] <= 0xBF:
        return False  # a UTF-8 continuation byte: the same character as the previous token
    c, before = _first_char(tok), _last_char(prev)
    if c.isspace() or before.isspace():
        return True
    if c in "'’" and _is_word_char(before) and _is_word_char(tok.text[1:2]):
        return False
    if not _is_word_char(c):
        return c != ""  # undecodable lead byte alone: keep with its neighbours
    return not _is_word_char(before)


def group_words(tokens: list[Token]) -> list[Word]:
    """Tokens -> words using `starts_word`. Every token belongs to exactly one word."""
    groups: list[list[int]] = []
    for i, tok in enumerate(tokens):
        if starts_word(tok, tokens[i - 1] if i else None):
            groups.append([i])
        else:
            groups[-1].append(i)
    words = []
    for g in groups:
        raw = b"".join(tokens[i].bytes for i in g)
        words.append(Word(raw.decode("utf-8", errors="replace"), g, tokens[g[0]].start, tokens[g[-1]].end))
    return words


def membership(words: list[Word], T: int) -> torch.Tensor:
    """(W, T) matrix with M[w, t] = 1 when token t belongs to word w."""
    m = torch.zeros(len(words), T)
    for w, word in enumerate(words):
        m[w, word.tokens] = 1.0
    return m


def word_matrix(att: torch.Tensor, words: list[Word]) -> torch.Tensor:
    """Token attention (..., T, T) -> word attention (..., W, W).

    Keys: the weights on a word's sub-tokens are SUMMED (how much the query reads that word).
    Queries: the rows of a word's sub-tokens are AVERAGED (what the word as a whole reads).
    Rows still sum to 1, and a word still never reads a later word.

    Worked example: tokens [A, b1, b2] with words A=[0], B=[1, 2] and rows
        t0: [1, 0, 0]   t1: [.6, .4, 0]   t2: [.2, .3, .5]
    word B's row = mean(t1, t2) summed per word = [(.6+.2)/2, (.4+0+.3+.5)/2] = [.4, .6].
    """
    m = membership(words, att.shape[-1]).to(att.dtype)  # (W, T)
    per_key_word = att @ m.T  # (..., T, T) x (T, W) -> (..., T, W): sum over key sub-tokens
    mean_rows = m / m.sum(dim=1, keepdim=True)  # (W, T): each word's row averages its tokens
    return mean_rows @ per_key_word  # (W, T) x (..., T, W) -> (..., W, W)


# ----------------------------------------------------------------------------- one sentence


@dataclass
class Explained:
    tokens: list[Token]
    words: list[Word]
    trace: tracing.Trace

    @property
    def attention(self) -> torch.Tensor:
        return self.trace.attention  # (L, H, T, T)

    def word_attention(self) -> torch.Tensor:
        return word_matrix(self.trace.attention, self.words)  # (L, H, W, W)


def explain(lm, text: str) -> Explained:
    """Tokenize plain text (no chat template, no added tokens) and trace one forward pass."""
    tokens = lm.tokenizer.encode(text)
    if not tokens:
        raise ValueError("the text has no tokens")
    return Explained(tokens, group_words(tokens), tracing.trace(lm.model, [t.id for t in tokens]))


def downsample(att: torch.Tensor, size: int) -> torch.Tensor:
    """Shrink maps (..., T, T) to at most (..., size, size) by averaging square blocks of cells.

    Used for the all-heads grid, where 270 full maps of a long sentence would be too much to send.
    Blocks are as even as possible; a sentence of `size` tokens or fewer is returned unchanged.
    """
    T = att.shape[-1]
    if T <= size:
        return att
    edges = [round(i * T / size) for i in range(size + 1)]
    bins = torch.zeros(size, T, dtype=att.dtype)  # (s, T): averaging weights per block
    for b in range(size):
        bins[b, edges[b] : edges[b + 1]] = 1.0 / (edges[b + 1] - edges[b])
    return bins @ att @ bins.T  # (s, T) x (..., T, T) x (T, s) -> (..., s, s)


# ----------------------------------------------------------------------------- where weights come from


@torch.inference_mode()
def queries_and_keys(model: Transformer, t: tracing.Trace, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Recompute one layer's rotated queries (H, T, hd) and keys (K, T, hd) from its input.

    The input to layer l is the residual stream before it: the embeddings for layer 0,
    otherwise the output of layer l-1. The block normalises it, projects it, then turns
    each vector by its position (RoPE) - exactly what transformer.Attention.forward does.
    """
    cfg = model.cfg
    x = t.embeddings if layer == 0 else t.residuals[layer - 1]  # (T, D)
    T = x.shape[0]
    block = model.blocks[layer]
    h = block.attn_norm(x)  # (T, D)
    q = block.attn.q(h).view(T, cfg.n_heads, cfg.head_dim).transpose(0, 1)  # (H, T, hd)
    k = block.attn.k(h).view(T, cfg.n_kv_heads, cfg.head_dim).transpose(0, 1)  # (K, T, hd)
    cos, sin = model.rope_cos[:T], model.rope_sin[:T]  # (T, hd) each, broadcast over heads
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin)


@dataclass
class Breakdown:
    layer: int
    head: int
    kv_head: int  # grouped-query attention: the key/value head this query head reads
    query: int  # position of the query token
    head_dim: int
    dots: list[float]  # q . k for every key position 0..T-1 (later ones are computed, then masked)
    scaled: list[float]  # dots / sqrt(head_dim)
    allowed: list[bool]  # causal mask: key position <= query position
    weights: list[float]  # softmax over the allowed keys; 0 for masked ones
    traced: list[float]  # the same row as the real forward pass recorded it
    max_abs_diff: float  # |weights - traced|, should be ~1e-7


@torch.inference_mode()
def score_breakdown(model: Transformer, t: tracing.Trace, layer: int, head: int, query: int) -> Breakdown:
    """One row of one head's attention, step by step: q . k -> / sqrt(hd) -> mask -> softmax."""
    cfg = model.cfg
    T = len(t.ids)
    if not (0 <= layer < cfg.n_layers and 0 <= head < cfg.n_heads and 0 <= query < T):
        raise ValueError(f"layer {layer}, head {head}, query {query} out of range "
                         f"(L={cfg.n_layers}, H={cfg.n_heads}, T={T})")
    q, k = queries_and_keys(model, t, layer)  # (H, T, hd), (K, T, hd)
    kv = head // (cfg.n_heads // cfg.n_kv_heads)
    dots = k[kv] @ q[head, query]  # (T, hd) x (hd,) -> (T,)
    scaled = dots / math.sqrt(cfg.head_dim)  # (T,)
    allowed = torch.arange(T) <= query  # (T,): a token may not read the future
    weights = scaled.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # (T,)
    traced = t.attention[layer, head, query]  # (T,)
    return Breakdown(
        layer, head, kv, query, cfg.head_dim, dots.tolist(), scaled.tolist(), allowed.tolist(),
        weights.tolist(), traced.tolist(), float((weights - traced).abs().max()),
    )


# ----------------------------------------------------------------------------- what the explorer draws


@dataclass
class View:
    maps: torch.Tensor  # (L', H', N, N) the selected layers and heads; N = T tokens or W words
    head_mean: torch.Tensor  # (L', N, N) each selected layer, averaged over all its heads
    layer_mean: torch.Tensor  # (H', N, N) each selected head, averaged over all layers
    mean: torch.Tensor  # (N, N) averaged over every layer and head


def mean_view(att: torch.Tensor, layers: list[int], heads: list[int]) -> View:
    """The selected maps of weights (L, H, N, N), and their averages over heads and over layers."""
    return View(att[layers][:, heads], att[layers].mean(1), att[:, heads].mean(0), att.mean((0, 1)))


@dataclass
class Views:
    token: View | None  # the weights as computed (N = T tokens)
    word: View | None  # sub-tokens combined by word_matrix (N = W words)
    grid: torch.Tensor | None  # (L, H, s, s) every head, block-averaged to at most s x s
    breakdown: Breakdown | None


_explained = Memo(size=4)  # the last few sentences: the breakdown panel asks again about the same one


def views(lm, text: str, layers: list[int], heads: list[int], which=("token",), grid: int | None = None,
          breakdown: tuple[int, int, int] | None = None) -> Views:
    """What the explorer draws: which = "token" and/or "word"; grid = s; breakdown = (layer, head, query)."""
    e = _explained.get(lm, text, lambda: explain(lm, text))
    token = mean_view(e.attention, layers, heads) if "token" in which else None
    word = mean_view(e.word_attention(), layers, heads) if "word" in which else None
    small = None if grid is None else downsample(e.attention, grid)
    steps = None if breakdown is None else score_breakdown(lm.model, e.trace, *breakdown)
    return Views(token, word, small, steps)
