"""A faster numeric path for inference: the same fp32 arithmetic as transformer.py, laid out for speed.

transformer.py is the textbook. This file is the engine room: it computes the same function
(tests/test_fastpath.py bounds the difference) with three changes that the benchmark
(bench/bench_engine.py) shows pay on a 2-core CPU:

1. Pre-transposed weights. Decoding one token is a matrix-vector product per weight matrix,
   bound by how fast the weights stream from memory. Stored as (in, out), `x @ Wt` reads
   them in the order the math library likes best; the 49152 x 576 unembedding alone goes
   from ~10 ms to ~5 ms per token.
2. Fused matrices: Q, K and V become one (D, (H+2K)*hd) matrix, gate and up one (D, 2F)
   matrix, so each layer makes 4 matrix products instead of 7 (fewer trips through PyTorch).
3. Fewer small operations: one RMSNorm kernel, RoPE applied to queries and keys together,
   the positions and the mask computed once per pass instead of per layer.

What was tried and dropped because it did not pay on this CPU (AVX2, no AVX-512/bf16
instructions): bf16 weights (10x slower matrix-vector products) and int8 weights through
torch.ao dynamic quantization or torch._weight_int8pack_mm (both slower than fp32 here).

Memory: the fused matrices are the only copy. The reference model's nn.Linear weights are
re-pointed at views of them (same values, same shapes, transposed strides), so turning the
fast path on costs no second copy of the layers, only the transposed unembedding (113 MB).
Tracing (record=True) always runs the textbook path, so attention weights come from there.

Shape letters as in transformer.py: B batch, T new positions, S key positions, D d_model,
H query heads, K kv heads, hd head_dim, F d_ff, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prediction_machine.config import PRECISIONS
from prediction_machine.model.transformer import KVCache, Transformer


class FusedLayer:
    """One block's weights, fused and transposed: four (in, out) matrices and two norm gains."""

    def __init__(self, block):
        a, m = block.attn, block.mlp
        self.attn_norm, self.mlp_norm = block.attn_norm, block.mlp_norm  # RMSNorm modules: gain .weight (D,)
        self.qkv = torch.cat([a.q.weight, a.k.weight, a.v.weight]).t().contiguous()  # (D, (H+2K)*hd)
        self.o = a.o.weight.t().contiguous()  # (H*hd, D)
        self.gate_up = torch.cat([m.gate.weight, m.up.weight]).t().contiguous()  # (D, 2F)
        self.down = m.down.weight.t().contiguous()  # (F, D)
        # Point the textbook modules at the same memory: W = Wt.t() is a view with W's shape.
        q_out, kv_out, f = a.q.out_features, a.k.out_features, m.gate.out_features
        share(a.q, self.qkv[:, :q_out])
        share(a.k, self.qkv[:, q_out : q_out + kv_out])
        share(a.v, self.qkv[:, q_out + kv_out :])
        share(a.o, self.o)
        share(m.gate, self.gate_up[:, :f])
        share(m.up, self.gate_up[:, f:])
        share(m.down, self.down)


def share(linear: nn.Linear, wt: torch.Tensor) -> None:
    """Make `linear.weight` a view of the (in, out) matrix `wt`: no copy, identical values."""
    linear.weight = nn.Parameter(wt.t(), requires_grad=False)  # (out, in), column-major


class FusedDecoder:
    """Called like a Transformer: `logits, record = decoder(idx, cache=None, record=False, last_only=False)`."""

    def __init__(self, model: Transformer):
        self.model, self.cfg = model, model.cfg
        self.layers = [FusedLayer(b) for b in model.blocks]
        # Weights loaded from safetensors are views of one memory-mapped file; every matrix was
        # just copied, so copy the rest too and let the mapping (538 MB resident) go.
        for p in [model.embed.weight, model.norm.weight] + [b.attn_norm.weight for b in model.blocks] + [
            b.mlp_norm.weight for b in model.blocks
        ]:
            p.data = p.data.clone()
        w = model.embed.weight if model.lm_head is None else model.lm_head.weight  # (V, D)
        self.unembed_t = w.t().contiguous()  # (D, V): a second copy when tied (the lookup needs rows)

    def __call__(self, idx, cache: KVCache | None = None, record: bool = False, last_only: bool = False):
        if record:
            return self.model(idx, cache=cache, record=True, last_only=last_only)  # tracing: textbook path
        with torch.inference_mode():
            return self.forward(idx, cache, last_only), None

    def forward(self, idx: torch.Tensor, cache: KVCache | None, last_only: bool) -> torch.Tensor:
        cfg, m = self.cfg, self.model
        B, T = idx.shape
        H, K, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        pos = cache.positions(T) if cache is not None else torch.arange(T).expand(B, T)  # (B, T)
        S = int(pos.max()) + 1  # keys needed by the furthest row
        if S > cfg.max_seq_len:
            raise ValueError(f"position {S - 1} is beyond the context of {cfg.max_seq_len}")
        cos, sin = m.rope_cos[pos][:, :, None], m.rope_sin[pos][:, :, None]  # (B, T, 1, hd)
        # Decoding one row needs no mask (it sees every cached key); a fresh prompt is plain causal.
        single_row = B == 1 and (cache is None or int(cache.lengths[0]) == 0 or T == 1)
        mask = None
        if not single_row:
            mask = (torch.arange(S)[None, None, :] <= pos[:, :, None])[:, None]  # (B, 1, T, S)
        rows = torch.arange(B)[:, None].expand_as(pos)  # (B, T): which cache row each position goes to
        x = m.embed(idx)  # (B, T, D)
        for i, L in enumerate(self.layers):
            h = F.rms_norm(x, (cfg.d_model,), L.attn_norm.weight, cfg.norm_eps)  # (B, T, D)
            qkv = product(h, L.qkv).view(B, T, H + 2 * K, hd)  # (B, T, H+2K, hd)
            qk = qkv[:, :, : H + K]  # (B, T, H+K, hd): queries and keys rotate together
            x1, x2 = qk.chunk(2, dim=-1)  # 2 x (B, T, H+K, hd/2)
            qk = qk * cos + torch.cat([-x2, x1], dim=-1) * sin  # (B, T, H+K, hd), "rotate half" RoPE
            q, k, v = qk[:, :, :H], qk[:, :, H:], qkv[:, :, H + K :]  # (B, T, H|K|K, hd)
            if cache is not None:  # cache.store, with the row indices and S computed once per pass
                cache.k[i][rows, pos], cache.v[i][rows, pos] = k, v
                k, v = cache.k[i][:, :S], cache.v[i][:, :S]  # (B, S, K, hd) each
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),  # (B, H|K, T|S, hd)
                attn_mask=mask, is_causal=single_row and T > 1, enable_gqa=True,
            )  # (B, H, T, hd)
            x = x + product(y.transpose(1, 2).reshape(B, T, H * hd), L.o)  # (B, T, D)
            h = F.rms_norm(x, (cfg.d_model,), L.mlp_norm.weight, cfg.norm_eps)  # (B, T, D)
            gate, up = product(h, L.gate_up).chunk(2, dim=-1)  # 2 x (B, T, F)
            x = x + product(F.silu(gate) * up, L.down)  # (B, T, D)
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, D)
        h = F.rms_norm(x, (cfg.d_model,), m.norm.weight, cfg.norm_eps)  # (..., D)
        return product(h, self.unembed_t)  # (B, T, V)


SPLIT_MAX_ROWS = 64  # bench/bench_engine.py: 1.55x faster at 1 row, 1.2x at 32, slower from 128 rows


def product(x: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """x @ wt for x (..., K) and wt (K, N); for a few rows, as two half-sums so both cores work.

    The math library multiplies a handful of rows by a matrix on one core, so half the memory
    bandwidth sits idle. Splitting the sum over K in two, x[:K/2] @ wt[:K/2] + x[K/2:] @ wt[K/2:],
    and handing both halves to one batched product lets PyTorch run them on two threads.
    wt.view(2, K/2, N) is a view of the same memory, so no weight is copied.
    """
    *lead, K = x.shape
    rows = x.numel() // K
    if rows > SPLIT_MAX_ROWS or K % 2:
        return x @ wt  # (..., N)
    halves = torch.bmm(x.reshape(rows, 2, K // 2).transpose(0, 1), wt.view(2, K // 2, -1))  # (2, rows, N)
    return halves.sum(0).view(*lead, -1)  # (..., N)


def decoder_for(model: Transformer, precision: str):
    """The callable that generation should use for `precision` (see PRECISIONS)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model
    return FusedDecoder(model)
