"""The decoder-only transformer, read top to bottom like the architecture diagram.

    token ids -> embedding -> [ RMSNorm -> attention (+RoPE, GQA) -> + -> RMSNorm -> SwiGLU MLP -> + ] x L
              -> RMSNorm -> unembedding -> logits

This is the Llama architecture that SmolLM2 uses, and also what the curriculum's tiny
models use. It knows nothing about text: it maps token ids to logits and, when asked,
returns what it computed on the way (see tracing.py).

References: "Attention Is All You Need" (Vaswani et al. 2017); RMSNorm (Zhang & Sennrich
2019); RoPE (Su et al. 2021); SwiGLU (Shazeer 2020); grouped-query attention (Ainslie et
al. 2023); the Llama papers (Touvron et al. 2023).

Shape letters used in the comments:
    B batch, T new positions in this call, S all key positions (cached + new), D d_model,
    H query heads, K key/value heads, hd head_dim, F d_ff, V vocabulary.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prediction_machine import cancel
from prediction_machine.config import ModelConfig
from prediction_machine.model import hooks as hooking
from prediction_machine.model.hooks import NO_HOOKS, Hooks

# ----------------------------------------------------------------------------- RMSNorm


class RMSNorm(nn.Module):
    """Scale each vector to unit root-mean-square, then by a learned gain (no mean, no bias)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rms = x.pow(2).mean(-1, keepdim=True).add(self.eps).rsqrt()  # (..., 1)
        return x * rms * self.weight  # (..., D)


# ----------------------------------------------------------------------------- rotary positions


def rope_tables(head_dim: int, max_len: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin for every position and every pair of dimensions, "rotate half" layout.

    Dimension i is paired with dimension i + head_dim/2 and the pair turns by angle
    position * base**(-2i/head_dim): fast turns for early pairs, slow ones for late pairs.
    """
    # Always on the CPU, even while the model is being built on the meta device for loading.
    even = torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu")  # (hd/2,)
    inv_freq = base ** (-even / head_dim)  # (hd/2,)
    positions = torch.arange(max_len, dtype=torch.float64, device="cpu")  # (max_len,)
    angles = torch.outer(positions, inv_freq)  # (max_len, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (max_len, hd)
    return angles.cos().float(), angles.sin().float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)  # 2 x (..., hd/2)
    return torch.cat([-x2, x1], dim=-1)  # (..., hd)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate queries or keys by their position. x: (B, heads, T, hd); cos, sin: (B, 1, T, hd)."""
    return x * cos + rotate_half(x) * sin


# ----------------------------------------------------------------------------- KV cache


class KVCache:
    """Keys and values of past positions, so each new token costs one position, not all of them.

    Each row of the batch has its own length, so sequences of different lengths (different
    students' prompts) can decode together in one pass over the weights.
    """

    def __init__(self, cfg: ModelConfig, batch_size: int, max_len: int, dtype=torch.float32):
        shape = (batch_size, max_len, cfg.n_kv_heads, cfg.head_dim)  # (B, S_max, K, hd)
        self.k = [torch.zeros(shape, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype) for _ in range(cfg.n_layers)]
        self.lengths = torch.zeros(batch_size, dtype=torch.long)  # (B,) positions filled per row
        self.max_len = max_len

    def positions(self, T: int) -> torch.Tensor:
        return self.lengths[:, None] + torch.arange(T)  # (B, T)

    def store(self, layer: int, pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        """Write the new keys/values (B, T, K, hd) at `pos` (B, T); return all keys/values so far."""
        rows = torch.arange(pos.shape[0])[:, None].expand_as(pos)  # (B, T)
        self.k[layer][rows, pos] = k
        self.v[layer][rows, pos] = v
        S = int(pos.max()) + 1
        return self.k[layer][:, :S], self.v[layer][:, :S]  # 2 x (B, S, K, hd)

    def advance(self, T: int) -> None:
        self.lengths += T

    # Continuous batching (engine/batching.py) moves rows between caches with these three.

    def head(self, n: int) -> KVCache:
        """Rows 0..n-1 as a KVCache of batch n: views, so a forward pass on it writes into this cache."""
        view = copy.copy(self)  # a shallow copy, then every field narrowed to its first n rows
        view.k = [t[:n] for t in self.k]  # L x (n, S_max, K, hd)
        view.v = [t[:n] for t in self.v]
        view.lengths = self.lengths[:n]  # advance() adds in place, through the view
        return view

    def copy_row(self, src_row: int, dst: KVCache, dst_row: int) -> None:
        """Copy one row's filled positions (and its length) into row `dst_row` of `dst`, which may be self."""
        n = int(self.lengths[src_row])
        for layer in range(len(self.k)):
            dst.k[layer][dst_row, :n] = self.k[layer][src_row, :n]  # (n, K, hd)
            dst.v[layer][dst_row, :n] = self.v[layer][src_row, :n]
        dst.lengths[dst_row] = n

    def copy_rows(self, n: int, dst: KVCache) -> None:
        """Copy rows 0..n-1 into the same rows of `dst`, a cache at least as long (to grow a cache)."""
        if n == 0:
            return
        S = int(self.lengths[:n].max())  # the longest row decides how much to copy
        for layer in range(len(self.k)):
            dst.k[layer][:n, :S] = self.k[layer][:n, :S]  # (n, S, K, hd)
            dst.v[layer][:n, :S] = self.v[layer][:n, :S]
        dst.lengths[:n] = self.lengths[:n]


# ----------------------------------------------------------------------------- attention


class Attention(nn.Module):
    """Causal self-attention with grouped-query heads: H query heads share K key/value heads."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q = nn.Linear(cfg.d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v = nn.Linear(cfg.d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.d_model, bias=False)

    def forward(self, x, cos, sin, pos, cache: KVCache | None, layer: int, need_weights: bool,
                hooks: Hooks | None = None):
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.n_heads, self.head_dim)  # (B, T, H, hd)
        k = self.k(x).view(B, T, self.n_kv_heads, self.head_dim)  # (B, T, K, hd)
        v = self.v(x).view(B, T, self.n_kv_heads, self.head_dim)  # (B, T, K, hd)
        q = apply_rope(q.transpose(1, 2), cos, sin)  # (B, H, T, hd)
        k = apply_rope(k.transpose(1, 2), cos, sin).transpose(1, 2)  # (B, T, K, hd)
        if cache is not None:
            k, v = cache.store(layer, pos, k, v)  # (B, S, K, hd) each
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, K, S, hd)
        S = k.shape[2]
        # A query at position p may look at keys 0..p and nothing later: the causal mask.
        mask = torch.arange(S)[None, None, :] <= pos[:, :, None]  # (B, T, S)
        mask = mask[:, None]  # (B, 1, T, S), shared by every head
        if need_weights:
            y, att = self.eager(q, k, v, mask)
        else:
            y, att = self.fast(q, k, v, mask, causal_prefill=cache is None and B == 1), None
        y = y.transpose(1, 2)  # (B, T, H, hd)
        y = hooking.apply((hooks or NO_HOOKS).attn_heads.get(layer), y)
        y = y.reshape(B, T, self.n_heads * self.head_dim)  # (B, T, H*hd)
        return self.o(y), att  # (B, T, D), (B, H, T, S) or None

    def eager(self, q, k, v, mask):
        """Attention written out step by step, so its weights can be shown."""
        group = self.n_heads // self.n_kv_heads
        k = k.repeat_interleave(group, dim=1)  # (B, H, S, hd): query head h reads kv head h // group
        v = v.repeat_interleave(group, dim=1)  # (B, H, S, hd)
        scores = q @ k.transpose(-2, -1) / self.head_dim**0.5  # (B, H, T, hd) x (B, H, hd, S) -> (B, H, T, S)
        scores = scores.masked_fill(~mask, float("-inf"))  # future keys get zero weight after softmax
        att = scores.softmax(dim=-1)  # (B, H, T, S), each row sums to 1
        return att @ v, att  # (B, H, T, S) x (B, H, S, hd) -> (B, H, T, hd)

    def fast(self, q, k, v, mask, causal_prefill: bool):
        """The same computation through PyTorch's fused kernel (no weights returned)."""
        if causal_prefill:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)  # (B, H, T, hd)


# ----------------------------------------------------------------------------- MLP


class SwiGLU(nn.Module):
    """The feed-forward layer: a gated expansion to d_ff and back, applied to each position alone."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B, T, D) -> (B, T, F) -> (B, T, D)


# ----------------------------------------------------------------------------- block


class Block(nn.Module):
    """One layer: each sub-layer reads a normalised copy of the residual stream and adds back to it."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(self, x, cos, sin, pos, cache, layer, need_weights=False, hooks: Hooks | None = None):
        hooks = hooks or NO_HOOKS
        a, att = self.attn(self.attn_norm(x), cos, sin, pos, cache, layer, need_weights, hooks)
        x = x + hooking.apply(hooks.attn_out.get(layer), a)  # (B, T, D)
        m = hooking.apply(hooks.mlp_out.get(layer), self.mlp(self.mlp_norm(x)))  # (B, T, D)
        return hooking.apply(hooks.resid.get(layer), x + m), att  # (B, T, D)


# ----------------------------------------------------------------------------- the model


@dataclass
class ForwardRecord:
    """What a forward pass saw on the way, filled only when asked for (see tracing.py)."""

    embeddings: torch.Tensor  # (B, T, D) token vectors before layer 0
    residuals: list[torch.Tensor]  # L x (B, T, D), the stream after each layer
    attention: list[torch.Tensor]  # L x (B, H, T, S), attention weights of each layer


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # Built from an explicit tensor, then initialised below: nn.Embedding's own init would
        # pull in torch's compiler (2 s) when the model is built on the meta device for loading.
        table = torch.empty(cfg.vocab_size, cfg.d_model)  # (V, C)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, _weight=table)
        if self.embed.weight.device.type != "meta":
            nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)  # (max_len, hd)
        self.register_buffer("rope_sin", sin, persistent=False)  # (max_len, hd)

    def unembed(self, h: torch.Tensor, hooks: Hooks | None = None) -> torch.Tensor:
        """Final norm, then a score for every vocabulary entry. Also used by the logit lens."""
        h = hooking.apply((hooks or NO_HOOKS).final_norm, self.norm(h))  # (..., D)
        w = self.embed.weight if self.lm_head is None else self.lm_head.weight  # (V, D)
        return F.linear(h, w)  # (..., V)

    def forward(
        self,
        idx: torch.Tensor,
        cache: KVCache | None = None,
        record: bool = False,
        last_only: bool = False,
        hooks: Hooks | None = None,
    ) -> tuple[torch.Tensor, ForwardRecord | None]:
        """idx (B, T) -> logits (B, T, V), or (B, 1, V) with last_only; plus a record if asked.

        `hooks` (see hooks.py) watch or change what flows at named points; None is the plain pass.
        """
        B, T = idx.shape
        pos = cache.positions(T) if cache is not None else torch.arange(T).expand(B, T)  # (B, T)
        if int(pos.max()) >= self.cfg.max_seq_len:
            raise ValueError(f"position {int(pos.max())} is beyond the context of {self.cfg.max_seq_len}")
        cos, sin = self.rope_cos[pos][:, None], self.rope_sin[pos][:, None]  # (B, 1, T, hd) each
        x = hooking.apply((hooks or NO_HOOKS).embed, self.embed(idx))  # (B, T, D)
        rec = ForwardRecord(x, [], []) if record else None
        for i, block in enumerate(self.blocks):
            cancel.check()  # a caller who no longer wants the answer (cancel.py) stops it between layers
            x, att = block(x, cos, sin, pos, cache, i, need_weights=record, hooks=hooks)
            if rec is not None:
                rec.residuals.append(x)
                rec.attention.append(att)
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, D): generation only needs the next-token scores
        return self.unembed(x, hooks), rec

    def forward_from(self, x: torch.Tensor, layer: int, hooks: Hooks | None = None,
                     last_only: bool = False) -> torch.Tensor:
        """The rest of a forward pass: x (B, T, D) is the stream entering `layer`; -> logits (B, T, V).

        An experiment that changes layer l reruns only layers l.. and reuses the stream that an
        earlier run computed for the layers before it, since those are the same. layer 0 takes the
        token vectors (what `embed` holds), n_layers just the final norm and the unembedding.
        No KV cache: experiments run whole prompts.
        """
        B, T, _ = x.shape
        if not 0 <= layer <= self.cfg.n_layers:
            raise ValueError(f"layer must be in 0..{self.cfg.n_layers}, got {layer}")
        if T > self.cfg.max_seq_len:
            raise ValueError(f"position {T - 1} is beyond the context of {self.cfg.max_seq_len}")
        pos = torch.arange(T).expand(B, T)  # (B, T)
        cos, sin = self.rope_cos[pos][:, None], self.rope_sin[pos][:, None]  # (B, 1, T, hd) each
        for i in range(layer, self.cfg.n_layers):
            cancel.check()
            x, _ = self.blocks[i](x, cos, sin, pos, None, i, hooks=hooks)  # (B, T, D)
        if last_only:
            x = x[:, -1:]  # (B, 1, D)
        return self.unembed(x, hooks)
