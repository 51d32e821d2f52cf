"""Which layer decided: the logit lens over every token of a generation.

For each generated token and each layer: the token's probability and rank if the model had
stopped after that layer (the stream read through the final norm and the unembedding, as
model/tracing.py's lens does), and the first layer from which it is the top guess to the end.

One forward pass reads all of it. After a generation, the prompt and the generated tokens go
through the model once more, together, and a `resid` hook keeps each layer's stream at the
positions that predicted the generated tokens: position P-1+i predicted token i (P = prompt
length). Decoding ran one position per pass; this pass runs them all at once, so it costs
about one prefill, and the unembedding of L x N vectors is the rest (bench/bench_what_if.py).

Shape letters: L layers, N generated tokens, D d_model, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.experiments.readout import token
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.hooks import Hooks

CHUNK = 256  # rows unembedded at once: their logits take CHUNK x V floats (50 MB for SmolLM2)


@dataclass(frozen=True)
class GenerationLens:
    ids: list[int]  # the generated tokens, N of them
    model_probs: list[float]  # each token's probability when it was generated (temperature 1)
    prob: list[list[float]]  # [token][layer]: its probability read after each layer
    rank: list[list[int]]  # [token][layer]: 1 = the top guess after that layer
    decided: list[int | None]  # [token]: first layer where it is top and stays top; None if never

    def to_json(self, tokenizer) -> dict:
        return {"tokens": [token(tokenizer, i) for i in self.ids], "layers": len(self.prob[0]),
                "model_probs": self.model_probs, "prob": self.prob, "rank": self.rank,
                "decided": self.decided}


def decided_layer(ranks: list[int]) -> int | None:
    """The first layer from which the token is the top guess at every later layer.

    >>> decided_layer([5, 1, 2, 1, 1]), decided_layer([3, 2]), decided_layer([1, 1])
    (3, None, 0)
    """
    layer = None
    for i in range(len(ranks) - 1, -1, -1):
        if ranks[i] != 1:
            break
        layer = i
    return layer


@torch.inference_mode()
def lens_over(model, prompt_ids: list[int], generated: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability and rank (L, N) of each generated token after each layer, from one forward pass."""
    P, N = len(prompt_ids), len(generated)
    ids = prompt_ids + generated[:-1]  # the last token was predicted but never read
    kept: dict[int, torch.Tensor] = {}

    def keep(layer):
        def hook(x):  # x (1, T, D): watch only, pass it on unchanged
            kept[layer] = x[0, P - 1:]  # (N, D): the positions that predicted the generated tokens
            return x
        return hook

    L = model.cfg.n_layers
    hooks = Hooks(resid={layer: keep(layer) for layer in range(L)})
    model(torch.tensor([ids]), last_only=True, hooks=hooks)  # (1, T) -> the stream at every layer
    rows = torch.stack([kept[layer] for layer in range(L)]).reshape(L * N, -1)  # (L, N, D) -> (L*N, D)
    target = torch.tensor(generated).repeat(L)  # (L*N,): token i again for every layer
    prob, rank = torch.empty(L * N), torch.empty(L * N, dtype=torch.long)
    # A few large matrix products instead of one per layer: the unembedding is most of the cost, and
    # on 2 cores it ran 2.5x faster on 256 rows at once than on 32 (N) at a time. CHUNK bounds the logits.
    for a in range(0, L * N, CHUNK):
        b = min(a + CHUNK, L * N)
        logits = model.unembed(rows[a:b]).float()  # (b-a, D) -> (b-a, V)
        chosen = logits.gather(-1, target[a:b, None])  # (b-a, 1)
        prob[a:b] = (chosen[:, 0] - logits.logsumexp(-1)).exp()  # softmax at the chosen token
        rank[a:b] = (logits > chosen).sum(-1) + 1  # how many tokens beat it, plus one
    return prob.view(L, N), rank.view(L, N)


def generation_lens(model, prompt_ids: list[int], generated: list[int],
                    model_probs: list[float] | None = None) -> GenerationLens:
    """The lens over tokens already generated (`model_probs`, if given, are the steps' own)."""
    if not generated:
        raise ValueError("nothing was generated: the lens needs at least one new token")
    prob, rank = lens_over(model, prompt_ids, generated)  # (L, N) each
    ranks = rank.T.tolist()  # [token][layer]
    return GenerationLens(list(generated), list(model_probs or prob[-1].tolist()), prob.T.tolist(), ranks,
                          [decided_layer(r) for r in ranks])


def generate_and_read(lm, prompt_ids: list[int], params: SamplingParams, new_tokens: int,
                      seed: int | None = None) -> GenerationLens:
    """Generate on the textbook model, then read every token through the lens."""
    steps = list(generate(lm.model, prompt_ids, params, new_tokens, lm.stop_ids, seed, top_n=0))
    return generation_lens(lm.model, prompt_ids, [s.id for s in steps], [s.model_prob for s in steps])
