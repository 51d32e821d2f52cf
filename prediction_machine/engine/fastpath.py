"""A faster numeric path for inference: the same fp32 arithmetic as transformer.py, laid out for speed.

transformer.py is the textbook. This file is the engine room: it computes the same function
(tests/test_fastpath.py bounds the difference) with three changes that the benchmark
(bench/bench_engine.py) shows pay on a 2-core CPU:

1. Packed weights. Every matrix is handed once to oneDNN (the CPU math library inside PyTorch)
   and stored in its blocked layout, tuned for a batch of PACK_ROWS rows; each product is then
   one call on that layout. Over many rows (a class, a long prompt) that is more than twice as
   fast as `x @ Wt` with pre-transposed weights, because oneDNN keeps both cores' vector units
   busy where the plain path leaves them idle (docs/performance.md has the figures, with the
   machine and date of each). For one to three rows, where reading the weights is all
   the cost, the model's own matrices are read faster (see PLAIN_MAX_ROWS).
2. Fused matrices: Q, K and V become one ((H+2K)*hd, D) matrix, gate and up one (2F, D)
   matrix, so each layer makes 4 matrix products instead of 7 (fewer trips through PyTorch).
3. Fewer small operations: one RMSNorm kernel, RoPE applied to queries and keys together,
   the positions, the mask and the cache row indices computed once per pass, not per layer.

What was tried and dropped: bf16 weights and activations, and int8 or int4 weights in
PyTorch's formats (all lossy, so they fail the 1e-3 honesty bound; the int4 kernel with fp32
activations was also 17x slower), and torch.compile (about 500 s to compile on 2 cores, and
slower here). The package's own Q4_1 blocks would be lossless (the fp32 weights are their exact
expansion), but a product from them written in PyTorch and compiled was slower than fp32
(docs/performance.md, in its dated log).

Memory: the packed matrices are a second copy of the layers (538 MB with the unembedding),
beside the textbook module's own weights, which tracing (record=True) still uses: attention
weights always come from the textbook path. Without oneDNN (a PyTorch built without it) the
same code multiplies the plain fused matrices instead.

Shape letters as in transformer.py: B batch, T new positions, S key positions, D d_model,
H query heads, K kv heads, hd head_dim, F d_ff, V vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prediction_machine.config import PRECISIONS
from prediction_machine.model.transformer import KVCache, Transformer

PACK_ROWS = 32  # the batch oneDNN tunes its layout for; bench: from 4 to 512 rows none is slower than plain
# Up to this many rows a product uses the model's own (out, in) matrices: on an Intel Xeon with AMX,
# all the products of one token took 20.6 ms against 25.7 ms packed (3 rows 23.1 vs 29.0, 4 rows 34.8 vs 27.0).
PLAIN_MAX_ROWS = 3
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class Packed:
    """Weight matrices W (out, in), stacked along `out`, ready for `x @ W.T`: oneDNN's blocked copy
    (or W.T itself without oneDNN) for batches, the model's own matrices for up to PLAIN_MAX_ROWS rows."""

    def __init__(self, *parts: torch.Tensor):
        self.parts = [p.detach() for p in parts]  # the textbook module's weights: shared, no copy
        w = torch.cat(self.parts).float().contiguous()  # (out, in)
        self.onednn = ONEDNN
        self.w = torch.ops.mkldnn._reorder_linear_weight(w, PACK_ROWS) if ONEDNN else w.t().contiguous()

    def __rmatmul__(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) @ packed -> (..., out)"""
        if x.numel() <= PLAIN_MAX_ROWS * x.shape[-1]:  # reading the weights is the whole cost: the plain layout reads faster
            ys = [F.linear(x, p) for p in self.parts]  # each (..., out_part)
            return ys[0] if len(ys) == 1 else torch.cat(ys, dim=-1)  # (..., out)
        if self.onednn:
            return torch.ops.mkldnn._linear_pointwise(x, self.w, None, "none", [], "")
        return x @ self.w


class FusedLayer:
    """One block's weights, fused and packed: four matrices and two norm gains."""

    def __init__(self, block):
        a, m = block.attn, block.mlp
        self.attn_norm, self.mlp_norm = block.attn_norm, block.mlp_norm  # RMSNorm modules: gain .weight (D,)
        self.qkv = Packed(a.q.weight, a.k.weight, a.v.weight)  # ((H+2K)*hd, D)
        self.o = Packed(a.o.weight)  # (D, H*hd)
        self.gate_up = Packed(m.gate.weight, m.up.weight)  # (2F, D)
        self.down = Packed(m.down.weight)  # (D, F)


class FusedDecoder:
    """Called like a Transformer: `logits, record = decoder(idx, cache=None, record=False, last_only=False)`."""

    def __init__(self, model: Transformer):
        self.model, self.cfg = model, model.cfg
        with torch.no_grad():
            self.layers = [FusedLayer(b) for b in model.blocks]
            self.unembed = Packed(model.embed.weight if model.lm_head is None else model.lm_head.weight)  # (V, D)

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
            qkv = (h @ L.qkv).view(B, T, H + 2 * K, hd)  # (B, T, H+2K, hd)
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
            x = x + y.transpose(1, 2).reshape(B, T, H * hd) @ L.o  # (B, T, D)
            h = F.rms_norm(x, (cfg.d_model,), L.mlp_norm.weight, cfg.norm_eps)  # (B, T, D)
            gate, up = (h @ L.gate_up).chunk(2, dim=-1)  # 2 x (B, T, F)
            x = x + (F.silu(gate) * up) @ L.down  # (B, T, D)
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, D)
        h = F.rms_norm(x, (cfg.d_model,), m.norm.weight, cfg.norm_eps)  # (..., D)
        return h @ self.unembed  # (B, T, V)


def decoder_for(model: Transformer, precision: str):
    """The callable that generation should use for `precision` (see PRECISIONS)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model
    return FusedDecoder(model)
