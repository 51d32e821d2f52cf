"""The k most likely tokens of every row, found by looking at blocks first, and the count of non-zero ones.

Every generated token needs its row's few dozen best tokens, for the draw and for the table,
and the batcher needs them for a whole class at once: 32 rows of 49,152 scores. PyTorch's
`topk` walks all of them one by one. This file asks a cheaper question first:

1. Cut each row into blocks of BLOCK scores and take each block's largest (`amax`, which runs on
   the processor's vector units: a pass that costs about as little as a sum).
2. Keep the k blocks whose largest scores are highest.
3. Run `topk` over those k blocks only (k x BLOCK scores, not the whole row).

Why step 3 finds the true top k: a score in a block that was left out is at most its block's
largest, which is at most the smallest largest among the k kept blocks; each kept block holds a
score at least that big, so k scores are at least as big as it. Only a tie at the k-th place can
go either way, as it can with `topk` itself (the draw orders ties by id: sampling.ties_by_id).

Worked example, BLOCK = 2 and k = 2: the row [1, 9, 4, 3, 8, 0] has blocks [1, 9] [4, 3] [8, 0]
with largest 9, 4, 8. The two best blocks are the first and the third, and the top two of
[1, 9, 8, 0] are 9 and 8, the row's own top two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK = 64  # scores per block: 768 blocks in SmolLM2's vocabulary


def top_ids(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The ids of the k largest scores of each row, largest first. (B, V) -> (B, k)

    >>> top_ids(torch.tensor([[1., 9., 4., 3., 8., 0.]]), 2).tolist()
    [[1, 4]]
    """
    B, V = scores.shape
    k = min(k, V)
    blocks_n = -(-V // BLOCK)  # ceil(V / BLOCK)
    if k * BLOCK >= V or blocks_n <= k:  # no block to leave out: the plain top-k is as cheap
        return scores.topk(k, dim=-1).indices  # (B, k)
    padded = F.pad(scores, (0, blocks_n * BLOCK - V), value=float("-inf")) if V % BLOCK else scores
    blocks = padded.reshape(B, blocks_n, BLOCK)  # (B, blocks, BLOCK)
    best = blocks.amax(-1).topk(k, dim=-1).indices  # (B, k): the blocks holding the k highest maxima
    kept = blocks.gather(1, best[:, :, None].expand(-1, -1, BLOCK))  # (B, k, BLOCK)
    within = kept.reshape(B, k * BLOCK).topk(k, dim=-1).indices  # (B, k): places among the kept scores
    return best.gather(1, within // BLOCK) * BLOCK + within % BLOCK  # (B, k): back to token ids


def nonzero_count(probs: torch.Tensor) -> torch.Tensor:
    """How many entries of each row are above zero, for probabilities (never negative). (..., V) -> (...)

    sign() is 0 or 1 here, and a float sum of up to 2**24 ones is exact; this runs on the vector
    units, where count_nonzero counts one by one (about 6x slower on 32 rows of 49,152).

    >>> nonzero_count(torch.tensor([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])).tolist()
    [2, 1]
    """
    return probs.sign().sum(-1).long()
