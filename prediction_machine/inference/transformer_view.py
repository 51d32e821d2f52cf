"""The transformer stage as the page shows it: the logit lens, and each layer's attention at a glance.

The logit lens is shown two ways: the chosen token's probability and rank after every layer
(a line: when did the model settle on it?), and each layer's own top guesses (a table).

The numbers come from one traced forward pass (model/tracing.py); this module only chooses
what to show of it.

Shape letters: L layers, H heads, T tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.model import tracing
from prediction_machine.model.transformer import Transformer

MAX_THUMBNAIL_TOKENS = 48  # per-layer thumbnails are L x T x T numbers: small prompts only


@dataclass(frozen=True)
class TransformerView:
    lens: list[tracing.LensGuess]  # one per layer: the best guesses if the model stopped there
    chosen: tracing.TokenPath  # the token chosen at this step (or the final top guess), layer by layer
    # (L, T, T) each layer's attention, averaged over its heads; None if T is too long
    thumbnails: torch.Tensor | None
    max_thumbnail_tokens: int  # the longest prompt that gets thumbnails


def head_means(attention: torch.Tensor) -> torch.Tensor:
    """One map per layer: the attention weights averaged over the heads. (L, H, T, T) -> (L, T, T)

    Rows still sum to 1 (an average of rows that each sum to 1).
    """
    return attention.mean(1)  # (L, H, T, T) -> (L, T, T)


def describe(model: Transformer, t: tracing.Trace, lens_k: int = 5,
             max_thumbnail_tokens: int = MAX_THUMBNAIL_TOKENS, target: int | None = None) -> TransformerView:
    """The logit lens at the last position (lens_k guesses per layer), and the per-layer thumbnails.

    `target` is the token finally chosen after these ids; None follows the last layer's top guess.
    """
    probs = tracing.lens_probs(model, t, -1)  # (L, V), read once for the table and the line
    lens = tracing.logit_lens(model, t, -1, lens_k, probs)
    chosen = tracing.token_path(probs, lens[-1].ids[0] if target is None else target)
    small = len(t.ids) <= max_thumbnail_tokens
    return TransformerView(lens, chosen, head_means(t.attention) if small else None, max_thumbnail_tokens)
