"""Two head scores that show a circuit forming: the induction score and the previous-token score.

An induction head completes a pattern it has seen before in the same text: at "... A B ... A" it
looks back at the token after the earlier A (that is B) and predicts it again. To measure it, feed
the model random tokens repeated twice, so only copying can predict the second half:

    t0 t1 t2 ... t(n-1) | t0 t1 t2 ... t(n-1)
    position n+i holds t_i again; its earlier copy is at i; the token after that copy is at i+1

The induction score of a head is the attention from each second-half position n+i to position
i+1, averaged over the second half (Olsson et al. 2022, "In-context Learning and Induction Heads").
A head that copies perfectly scores 1.0; a head that spreads its attention evenly scores about 0
(1/(n+i+1) per row). Random tokens matter: in real text a head could score by following grammar.

A previous-token head attends from each position to the one just before it; induction heads are
usually built on top of one (layer l finds "what came before me", a later layer matches on it).
Its score is the attention from position p to p-1, averaged over p >= 1.

Shape letters: L layers, H heads, T tokens (T = 2n on the repeated probe), B probes.
"""

from __future__ import annotations

import torch

from prediction_machine.model.transformer import Transformer

REPEAT_HALF = 24  # n: random tokens in each half of the induction probe (2n = 48 fits every tiny context)
REPEAT_PROBES = 4  # probes averaged, so one unlucky draw of tokens does not decide a head's score
PROBE_SEED = 20220308  # fixed: every snapshot of every run measures on the same tokens
FORMED_AT = 0.4  # a head counts as an induction head once its score passes this (uniform is ~0.03)


def repeated_tokens(choices: torch.Tensor, n: int = REPEAT_HALF, probes: int = REPEAT_PROBES,
                    seed: int = PROBE_SEED) -> torch.Tensor:
    """`probes` rows of n token ids drawn at random from `choices`, each row repeated twice. -> (B, 2n)

    Example (n=3): [[7, 2, 9, 7, 2, 9], ...].
    """
    g = torch.Generator().manual_seed(seed)
    half = choices[torch.randint(0, len(choices), (probes, n), generator=g)]  # (B, n)
    return torch.cat([half, half], dim=1)  # (B, 2n)


def induction_scores(att: torch.Tensor) -> torch.Tensor:
    """Attention on a twice-repeated probe -> each head's induction score. (..., T, T) -> (...,)

    >>> n = 3; perfect = torch.zeros(2 * n, 2 * n)
    >>> for i in range(n): perfect[n + i, i + 1] = 1.0
    >>> induction_scores(perfect).item()
    1.0
    """
    T = att.shape[-1]
    n = T // 2
    queries = torch.arange(n, 2 * n)  # (n,) the second half
    keys = queries - n + 1  # (n,) the token after each one's earlier copy
    return att[..., queries, keys].mean(-1)  # (..., n) -> (...,)


def previous_token_scores(att: torch.Tensor) -> torch.Tensor:
    """Each head's attention from every position p >= 1 to p - 1, averaged. (..., T, T) -> (...,)"""
    T = att.shape[-1]
    queries = torch.arange(1, T)  # (T-1,)
    return att[..., queries, queries - 1].mean(-1)  # (..., T-1) -> (...,)


@torch.no_grad()
def head_scores(model: Transformer, probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the repeated probe through the model's eager attention -> (induction, previous-token), each (L, H).

    One forward pass of B x 2n tokens without gradients: a small part of a training step's cost.
    """
    _, rec = model(probe, record=True)
    att = torch.stack(rec.attention)  # (L, B, H, T, T)
    return induction_scores(att).mean(1), previous_token_scores(att).mean(1)  # (L, B, H) -> (L, H) each


def formation(snapshots: list[dict], threshold: float = FORMED_AT) -> dict | None:
    """The first snapshot where the best head's induction score passes `threshold`: its step, loss and head.

    Example: scores best 0.1, 0.2, 0.6 at steps 0, 50, 100 -> {"step": 100, ...}; never above -> None.
    """
    for snap in snapshots:
        scores = snap["induction"]  # L x H
        best = max((s, layer, head) for layer, row in enumerate(scores) for head, s in enumerate(row))
        if best[0] >= threshold:
            return {"step": snap["step"], "loss": snap.get("loss"), "score": best[0], "layer": best[1],
                    "head": best[2], "threshold": threshold}
    return None
