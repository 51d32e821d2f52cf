"""One decode step of one row, with every buffer and view made once: the single stream's step.

A learner's generation decodes one token at a time, in one row. Each layer's matrix products
then read the weights at the memory's speed, and everything else in the layer is tiny: a norm
of 576 numbers, RoPE on 12 vectors, attention over a few dozen keys. What those small steps
cost is mostly PyTorch's own work per operation: choosing a kernel, allocating the result,
making views. This step does the arithmetic of FusedDecoder.forward at one row, operation for
operation, so it gives the same bits (tests/test_one_row.py), but it writes each result into a
buffer allocated once and reads it through views made once. A layer then runs 16 operations
and allocates two small tensors (RoPE's roll and attention's output).

It needs the "split" layout at one row, where every matrix is cut into pieces along its
outputs and one batched product (torch.bmm) gives each core its piece. The decoder uses this
step when the layout probe picked split for one row; otherwise FusedDecoder.forward runs.

Shape letters as in transformer.py: D d_model, H query heads, K kv heads, hd head_dim, F d_ff,
V vocabulary, S key positions; n is a matrix's number of pieces (one per core), and a column
such as (n, D, 1) is one input vector seen by each of the n pieces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prediction_machine.model.transformer import KVCache


def pieces(decoder) -> dict[str, int] | None:
    """How many pieces each kind of matrix is split into now, or None if the split layout is not prepared."""
    layer = decoder.layers[0]
    kinds = {"qkv": layer.qkv, "o": layer.o, "gate_up": layer.gate_up, "down": layer.down,
             "unembed": decoder.unembed}
    stored = {name: m.stored.get("split") for name, m in kinds.items()}
    if any(w is None for w in stored.values()):
        return None
    return {name: w.shape[0] for name, w in stored.items()}


def column(vector: torch.Tensor, pieces: int) -> torch.Tensor:
    """vector (in,) as the (pieces, in, 1) right-hand side of a split product: a view, not a copy.

    A (1, in) row transposed, not a (in, 1) column made by .view: bmm runs its fast kernel only
    on the first (fastpath.Matrices.times says why)."""
    return vector.view(1, -1).t().expand(pieces, -1, -1)  # (pieces, in, 1)


class OneRowStep:
    """The buffers of one thread's single-row decode step. Use one per thread: it writes into them."""

    def __init__(self, decoder, pieces: dict[str, int]):
        cfg = decoder.cfg
        D, H, K, hd, F_ = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff
        self.decoder, self.dims, self.pieces = decoder, (D, H, K, hd, F_), pieces
        # Each layer's split matrices: views of the model's own weights, so holding them costs nothing
        # and they stay right even if the decoder drops its split layout later.
        self.weights = [tuple(m.stored["split"] for m in (L.qkv, L.o, L.gate_up, L.down))
                        for L in decoder.layers]  # L x (qkv, o, gate_up, down), each (n, out/n, in)
        self.unembed = decoder.unembed.stored["split"]  # (n, V/n, D)
        self.x = torch.zeros(D)  # (D,): the residual stream
        self.h = torch.zeros(D)  # (D,): the residual stream normed, what the products read
        self.qkv = torch.zeros((H + 2 * K) * hd)  # ((H+2K)*hd,): queries, keys, then values
        self.qk = torch.zeros(H + K, hd)  # (H+K, hd): queries and keys after RoPE
        self.gate_up = torch.zeros(2 * F_)  # (2F,): the MLP's gate, then its up projection
        # The views the products read and write, each made once.
        self.h_for_qkv = column(self.h, pieces["qkv"])  # (n, D, 1)
        self.h_for_gate_up = column(self.h, pieces["gate_up"])  # (n, D, 1)
        self.h_for_unembed = column(self.h, pieces["unembed"])  # (n, D, 1)
        self.qkv_out = self.qkv.view(pieces["qkv"], -1, 1)  # (n, (H+2K)*hd/n, 1)
        self.gate_up_out = self.gate_up.view(pieces["gate_up"], -1, 1)  # (n, 2F/n, 1)
        self.x_from_o = self.x.view(pieces["o"], -1, 1)  # (n, D/n, 1): the residual, cut as o's pieces
        self.x_from_down = self.x.view(pieces["down"], -1, 1)  # (n, D/n, 1)
        self.o_pieces = pieces["o"]
        self.qk_in = self.qkv[: (H + K) * hd].view(H + K, hd)  # (H+K, hd)
        self.v = self.qkv[(H + K) * hd :].view(K, hd)  # (K, hd)
        self.q_heads = self.qk[:H].view(1, H, 1, hd)  # (1, H, 1, hd): attention's query layout
        self.k_new = self.qk[H:]  # (K, hd)
        self.gate, self.up = self.gate_up[:F_], self.gate_up[F_:]  # (F,) each
        self.gate_for_down = column(self.gate, pieces["down"])  # (n, F, 1): silu(gate) * up lands in gate

    def norm(self, weight: torch.Tensor, eps: float) -> None:
        """h = rms_norm(x) * weight, fastpath.rms_norm's one-row arithmetic written into h."""
        D = self.x.shape[0]
        r = 1.0 / math.sqrt(float(self.x.dot(self.x)) / D + eps)  # rsqrt(mean(x^2) + eps), one number
        torch.addcmul(self.decoder.zero, self.x, weight, value=r, out=self.h)  # (D,): 0 + r * x * weight

    def __call__(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (1, 1, V) for token idx (1, 1) at the cache's next position."""
        dec = self.decoder
        m, cfg, (D, H, _, hd, _) = dec.model, dec.cfg, self.dims
        p = int(cache.lengths[0])  # this token's position; keys 0..p are attended to
        if p + 1 > cfg.max_seq_len:
            raise ValueError(f"position {p} is beyond the context of {cfg.max_seq_len}")
        cos, sin = m.rope_cos[p], dec.rope_sin_signed[p]  # (hd,) each
        torch.index_select(m.embed.weight, 0, idx.view(1), out=self.x.view(1, D))  # (1, D)
        for i, (L, (w_qkv, w_o, w_gate_up, w_down)) in enumerate(zip(dec.layers, self.weights, strict=True)):
            self.norm(L.attn_norm.weight, cfg.norm_eps)
            torch.bmm(w_qkv, self.h_for_qkv, out=self.qkv_out)  # (n, out/n, in) x (n, D, 1) -> (n, out/n, 1)
            # "rotate half" RoPE as in fastpath: the roll by hd/2, its sign in the sin table
            torch.mul(self.qk_in, cos, out=self.qk).addcmul_(self.qk_in.roll(hd // 2, -1), sin)  # (H+K, hd)
            cache.k[i][0, p], cache.v[i][0, p] = self.k_new, self.v  # (K, hd) each, at position p
            k, v = cache.k[i][:1, : p + 1], cache.v[i][:1, : p + 1]  # (1, S, K, hd) each
            y = F.scaled_dot_product_attention(self.q_heads, k.transpose(1, 2), v.transpose(1, 2),
                                               enable_gqa=True)  # (1, H, 1, hd)
            self.x_from_o.baddbmm_(w_o, column(y.view(H * hd), self.o_pieces))  # x += W_o y, cut in pieces
            self.norm(L.mlp_norm.weight, cfg.norm_eps)
            torch.bmm(w_gate_up, self.h_for_gate_up, out=self.gate_up_out)  # -> (n, 2F/n, 1)
            F.silu(self.gate, inplace=True).mul_(self.up)  # (F,): silu(gate) * up, in gate's place
            self.x_from_down.baddbmm_(w_down, self.gate_for_down)  # x += W_down (silu(gate) * up)
        cache.advance(1)
        self.norm(m.norm.weight, cfg.norm_eps)
        return torch.bmm(self.unembed, self.h_for_unembed).view(1, 1, -1)  # (n, V/n, 1) -> (1, 1, V), new
