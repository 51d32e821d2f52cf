"""Hooks: the one way to reach inside a forward pass, for the "ask what if" experiments.

A hook is a plain function at a named point of the forward pass. It receives the tensor the
model computed there and returns the tensor the model goes on with: the same one to watch,
a changed one to intervene. Nothing is stored in the model; a `Hooks` is passed to one call.

    hooks = Hooks(attn_heads={3: lambda y: y * keep})   # switch heads of layer 3 off
    logits, _ = model(idx, hooks=hooks)

The points, in the order the forward pass reaches them (shape letters as in transformer.py):
    embed          (B, T, D)     the token vectors, before layer 0
    attn_heads[l]  (B, T, H, hd) layer l's heads' outputs, before the output projection mixes them
    attn_out[l]    (B, T, D)     layer l's attention output, before it is added to the stream
    mlp_out[l]     (B, T, D)     layer l's MLP output, before it is added to the stream
    resid[l]       (B, T, D)     the residual stream after layer l
    final_norm     (B, T, D)     the stream after the final RMSNorm, just before the unembedding
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Hook = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Hooks:
    embed: Hook | None = None
    attn_heads: dict[int, Hook] = field(default_factory=dict)
    attn_out: dict[int, Hook] = field(default_factory=dict)
    mlp_out: dict[int, Hook] = field(default_factory=dict)
    resid: dict[int, Hook] = field(default_factory=dict)
    final_norm: Hook | None = None


NO_HOOKS = Hooks()  # the plain forward pass: every point passes its tensor on unchanged


def apply(hook: Hook | None, x: torch.Tensor) -> torch.Tensor:
    """Run a hook if there is one; a hook must hand back a tensor of the same shape."""
    if hook is None:
        return x
    y = hook(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(f"a hook must return a tensor of shape {tuple(x.shape)}")
    return y
