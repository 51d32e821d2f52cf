"""Heads with a measurable habit, found by measuring every head on the explorer's sentences.

Four habits, each a number per head (L, H) averaged over the example sentences:
- previous token: the weight on the token just before;
- first token: the weight parked on the very first token (an "attention sink");
- induction: the weight on the token that followed an earlier copy of the current token;
- referent: in "The animal didn't cross the street because it was too tired", the weight
  from "it" on "animal" against "street".

Captions are built from the measured numbers only.

References: Clark et al. 2019, "What Does BERT Look At?" (previous-token heads, heads that park
attention on a fixed token); Xiao et al. 2023, "Efficient Streaming Language Models with
Attention Sinks"; Olsson et al. 2022, "In-context Learning and Induction Heads".

Shape letters: L layers, H query heads, T tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch

from prediction_machine.inference.tokenizer import Token
from prediction_machine.memo import Memo
from prediction_machine.training.attention import EXAMPLES, REFERENT_CONTRAST, REFERENT_EXAMPLE, explain

_prominent, _prominent_lock = Memo(size=2), threading.Lock()  # prominent_heads on the page's examples


@dataclass
class Prominent:
    kind: str  # previous_token | first_token | induction | referent
    layer: int
    head: int
    score: float  # the measured mean weight that defines this kind (see `measure_heads`)
    baseline: float  # the same measure if attention were spread evenly over the allowed tokens
    caption: str  # a sentence built from the numbers above, nothing else
    example: int | None = None  # index into EXAMPLES where to see it
    query: int | None = None  # token position to hover in that example (where the pattern is clearest)
    details: dict = field(default_factory=dict)


def _uniform(positions: list[tuple[int, int]]) -> float:
    """Mean weight a single key gets if each query spreads evenly over keys 0..q."""
    return sum(1.0 / (q + 1) for q, _ in positions) / max(len(positions), 1)


def measure_heads(atts: list[torch.Tensor],
                  ids: list[list[int]]) -> dict[str, tuple[torch.Tensor, float, list]]:
    """Per-head scores (L, H) for each pattern, averaged over all example sentences.

    previous_token: weight from position i on i-1, for i >= 2 (i = 1 would mix with first_token).
    first_token: weight from position i on position 0, for i >= 1.
    induction: when token i repeats an earlier token at j < i-1, the weight from i on j+1
    (the token that followed last time), the copying pattern of Olsson et al.
    Returns {kind: (scores (L, H), uniform baseline, [(sentence, query, key) measured])}.
    """
    pairs: dict[str, list[tuple[int, int, int]]] = {"previous_token": [], "first_token": [], "induction": []}
    for s, seq in enumerate(ids):
        T = len(seq)
        pairs["previous_token"] += [(s, i, i - 1) for i in range(2, T)]
        pairs["first_token"] += [(s, i, 0) for i in range(1, T)]
        for i in range(2, T):
            earlier = [j for j in range(i - 1) if seq[j] == seq[i]]
            if earlier:
                pairs["induction"].append((s, i, earlier[-1] + 1))
    out = {}
    for kind, ps in pairs.items():
        if not ps:
            continue
        got = torch.stack([atts[s][:, :, q, k] for s, q, k in ps])  # (N, L, H)
        out[kind] = (got.mean(0), _uniform([(q, k) for _, q, k in ps]), ps)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _find(tokens: list[Token], text: str) -> int | None:
    return next((i for i, t in enumerate(tokens) if t.text.strip() == text), None)


def prominent_heads(lm, examples: list[dict] | None = None) -> list[Prominent]:
    """Measure every head on the example sentences and describe the clearest ones.

    Captions are written from the measured numbers only: the score, the even-spread
    baseline, and for "it" the weights on both candidate nouns in both sentences.
    The page's own examples (examples=None) are measured once per model, then remembered.
    """
    if examples is None:
        with _prominent_lock:  # six forward passes: once, even when many students ask together
            return _prominent.get(lm, None, lambda: prominent_heads(lm, EXAMPLES))
    done = [explain(lm, e["text"]) for e in examples]
    atts = [d.attention for d in done]  # each (L, H, T, T)
    found: list[Prominent] = []
    describe = {
        "previous_token": "the token just before",
        "first_token": "the very first token (a pattern often called an “attention sink”)",
        "induction": "the token that followed an earlier copy of the current token "
                     "(an “induction” pattern, which helps copy repeats)",
    }
    for kind, (scores, base, pairs) in measure_heads(atts, [d.trace.ids for d in done]).items():
        flat = int(scores.argmax())
        layer, head = divmod(flat, scores.shape[1])
        score = float(scores[layer, head])
        many = int((scores > 0.5).sum())
        sentences = sorted({s for s, _, _ in pairs})
        cap = (
            f"Layer {layer}, head {head}: on average {_pct(score)} of a token's attention goes to "
            f"{describe[kind]}, measured at {len(pairs)} positions in {len(sentences)} example sentences. "
            f"Spread evenly, it would be {_pct(base)}."
        )
        if kind == "first_token":
            cap += f" {many} of the {scores.numel()} heads put more than half their weight there."
        # Where to see it: the sentence with the most measured positions (the repeat, for induction).
        show = max(sentences, key=lambda s: sum(1 for p in pairs if p[0] == s))
        _, query, target = max((p for p in pairs if p[0] == show),
                               key=lambda p: float(atts[show][layer, head, p[1], p[2]]))
        found.append(Prominent(kind, layer, head, score, base, cap, example=show, query=query,
                               details={"positions": len(pairs), "heads_above_half": many, "target": target}))

    # "it" -> "animal": measured on one sentence, and contrasted with the sentence ending in "wide".
    if examples is not EXAMPLES:
        return found
    ex, alt = done[REFERENT_EXAMPLE], done[REFERENT_CONTRAST]
    i_it, i_animal, i_street = (_find(ex.tokens, w) for w in ("it", "animal", "street"))
    if None in (i_it, i_animal, i_street) or _find(alt.tokens, "it") != i_it:
        return found  # a tokenizer that splits these words: nothing to measure, so no claim
    row = ex.attention[:, :, i_it]  # (L, H, T)
    to_animal = row[:, :, i_animal]  # (L, H)
    flat = int(to_animal.argmax())
    layer, head = divmod(flat, to_animal.shape[1])
    w_animal, w_street = float(to_animal[layer, head]), float(row[layer, head, i_street])
    # The two sentences share every token up to "it"; a causal model cannot tell them apart there.
    same = float((alt.attention[:, :, i_it, : i_it + 1] - ex.attention[:, :, i_it, : i_it + 1]).abs().max())
    base = 1.0 / (i_it + 1)
    if w_animal > 2 * base and w_animal > w_street:
        cap = (f"Layer {layer}, head {head}: from “it”, {_pct(w_animal)} of the attention goes to “animal” "
               f"and {_pct(w_street)} to “street” (an even spread would give {_pct(base)} each).")
    else:
        cap = (f"No head clearly links “it” to “animal”: the strongest, layer {layer}, head {head}, gives it "
               f"{_pct(w_animal)} (an even spread would give {_pct(base)}).")
    cap += (f" In the version ending in “wide”, every head's row for “it” is the same (largest difference "
            f"{same:.1g}): at “it” the model has not read the last word yet, so no head can know there which "
            f"noun is meant. What a head does at “it” cannot depend on how the sentence ends.")
    found.append(Prominent(
        "referent", layer, head, w_animal, base, cap, example=REFERENT_EXAMPLE, query=i_it,
        details={"to_animal": w_animal, "to_street": w_street, "max_diff_in_wide_version": same},
    ))
    return found

