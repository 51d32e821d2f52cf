"""One decode step of one row, with every buffer and view made once: the single stream's step.

A learner's generation decodes one token at a time, in one row. Each layer's matrix products
then read the weights at the memory's speed, and everything else in the layer is tiny: a norm
of 576 numbers, RoPE on 12 vectors, attention over a few dozen keys. What those small steps
cost is mostly PyTorch's own work per operation: choosing a kernel, allocating the result,
making views. This step does the arithmetic of FusedDecoder.forward at one row, operation for
operation, so it gives the same bits (tests/test_one_row.py), but it writes each result into a
buffer allocated once and reads it through views made once. A layer then runs 17 operations
and allocates one small tensor (attention's output).

It runs on the layout the probe picked for one row, if that layout's products can write into a
buffer: "split" (every matrix cut into pieces along its outputs, one batched product, torch.bmm,
giving each core its piece; AMD EPYC picks it) or "plain" (the model's own matrices by torch.mm,
as F.linear multiplies them; Intel Xeon picks it). SplitProducts and PlainProducts are the two
ways to multiply; the step is the same. On "packed" FusedDecoder.forward runs.

Shape letters as in transformer.py: D d_model, H query heads, K kv heads, hd head_dim, F d_ff,
V vocabulary, S key positions; n is a matrix's number of pieces (one per core; 1 for plain), and
a column such as (n, D, 1) is one input vector seen by each of the n pieces.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prediction_machine.model.transformer import KVCache


def pieces(decoder, layout: str = "split") -> dict[str, int] | None:
    """How many pieces each kind of matrix is cut into in `layout` now (1 for plain), or None if
    the step cannot run on it: split not prepared, or a layout with no product into a buffer."""
    if layout not in PRODUCTS:
        return None
    if layout == "plain":
        return dict.fromkeys(("qkv", "o", "gate_up", "down", "unembed"), 1)
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


class SplitProducts:
    """W x on the split layout: the pieces (n, out/n, in) by one torch.bmm, each core its piece."""

    @staticmethod
    def weight(m) -> torch.Tensor:
        return m.stored["split"]  # (n, out/n, in): a view of the model's own weights

    @staticmethod
    def vector_in(v: torch.Tensor, n: int) -> torch.Tensor:
        return column(v, n)  # (n, in, 1)

    @staticmethod
    def vector_out(buf: torch.Tensor, n: int) -> torch.Tensor:
        return buf.view(n, -1, 1)  # (n, out/n, 1): the result lands in order

    @staticmethod
    def into(w: torch.Tensor, v_in: torch.Tensor, out: torch.Tensor) -> None:
        torch.bmm(w, v_in, out=out)  # (n, out/n, in) x (n, in, 1) -> (n, out/n, 1)

    @staticmethod
    def add(acc: torch.Tensor, w: torch.Tensor, v_in: torch.Tensor) -> None:
        acc.baddbmm_(w, v_in)  # (n, out/n, 1) += w @ v

    @staticmethod
    def fresh(w: torch.Tensor, v_in: torch.Tensor) -> torch.Tensor:
        return torch.bmm(w, v_in)  # (n, out/n, 1), a new tensor


class PlainProducts:
    """W x on the plain layout: the model's own matrix, as F.linear multiplies it (x @ W.T by mm)."""

    @staticmethod
    def weight(m) -> torch.Tensor:
        return m.stack.t()  # (in, out): a transposed view, as F.linear hands it to mm

    @staticmethod
    def vector_in(v: torch.Tensor, n: int) -> torch.Tensor:
        return v.view(1, -1)  # (1, in)

    @staticmethod
    def vector_out(buf: torch.Tensor, n: int) -> torch.Tensor:
        return buf.view(1, -1)  # (1, out)

    @staticmethod
    def into(w: torch.Tensor, v_in: torch.Tensor, out: torch.Tensor) -> None:
        torch.mm(v_in, w, out=out)  # (1, in) x (in, out) -> (1, out)

    @staticmethod
    def add(acc: torch.Tensor, w: torch.Tensor, v_in: torch.Tensor) -> None:
        acc.addmm_(v_in, w)  # (1, out) += v @ W.T, as fastpath.Matrices.add_times

    @staticmethod
    def fresh(w: torch.Tensor, v_in: torch.Tensor) -> torch.Tensor:
        return torch.mm(v_in, w)  # (1, out), a new tensor


PRODUCTS = {"split": SplitProducts, "plain": PlainProducts}  # the layouts whose products write into a buffer
STEP_LAYOUTS = tuple(PRODUCTS)  # (packed cannot: oneDNN's product returns a new tensor)


class OneRowStep:
    """The buffers of one thread's single-row decode step. Use one per thread: it writes into them."""

    def __init__(self, decoder, pieces: dict[str, int], layout: str = "split"):
        cfg = decoder.cfg
        D, H, K, hd, F_ = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff
        self.decoder, self.dims, self.pieces, self.layout = decoder, (D, H, K, hd, F_), pieces, layout
        self.products = P = PRODUCTS[layout]
        # Each layer's matrices as this layout multiplies them: views of the model's own weights, so
        # holding them costs nothing and they stay right even if the decoder drops a layout later.
        self.weights = [tuple(P.weight(m) for m in (L.qkv, L.o, L.gate_up, L.down))
                        for L in decoder.layers]  # L x (qkv, o, gate_up, down)
        self.unembed = P.weight(decoder.unembed)
        self.x = torch.zeros(D)  # (D,): the residual stream
        self.h = torch.zeros(D)  # (D,): the residual stream normed, what the products read
        self.qkv = torch.zeros((H + 2 * K) * hd)  # ((H+2K)*hd,): queries, keys, then values
        self.qk = torch.zeros(H + K, hd)  # (H+K, hd): queries and keys after RoPE
        self.rolled = torch.zeros(H + K, hd)  # (H+K, hd): qk_in rolled by hd/2, RoPE's "rotate half"
        self.roll_index = torch.arange(hd).roll(hd // 2)  # (hd,): column j of the roll is column j - hd/2
        self.gate_up = torch.zeros(2 * F_)  # (2F,): the MLP's gate, then its up projection
        # The views the products read and write, each made once.
        self.h_for_qkv = P.vector_in(self.h, pieces["qkv"])
        self.h_for_gate_up = P.vector_in(self.h, pieces["gate_up"])
        self.h_for_unembed = P.vector_in(self.h, pieces["unembed"])
        self.qkv_out = P.vector_out(self.qkv, pieces["qkv"])
        self.gate_up_out = P.vector_out(self.gate_up, pieces["gate_up"])
        self.x_from_o = P.vector_out(self.x, pieces["o"])  # the residual, cut as o's pieces
        self.x_from_down = P.vector_out(self.x, pieces["down"])
        self.o_pieces = pieces["o"]
        self.qk_in = self.qkv[: (H + K) * hd].view(H + K, hd)  # (H+K, hd)
        self.v = self.qkv[(H + K) * hd :].view(K, hd)  # (K, hd)
        self.q_heads = self.qk[:H].view(1, H, 1, hd)  # (1, H, 1, hd): attention's query layout
        self.k_new = self.qk[H:]  # (K, hd)
        self.gate, self.up = self.gate_up[:F_], self.gate_up[F_:]  # (F,) each
        self.gate_for_down = P.vector_in(self.gate, pieces["down"])  # silu(gate) * up lands in gate

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
        P = self.products
        for i, (L, (w_qkv, w_o, w_gate_up, w_down)) in enumerate(zip(dec.layers, self.weights, strict=True)):
            self.norm(L.attn_norm.weight, cfg.norm_eps)
            P.into(w_qkv, self.h_for_qkv, self.qkv_out)  # qkv = W_qkv h
            # "rotate half" RoPE as in fastpath: the roll by hd/2, its sign in the sin table
            # (the same values as qk_in.roll(hd // 2, -1), gathered into a buffer: roll allocates twice)
            torch.index_select(self.qk_in, 1, self.roll_index, out=self.rolled)  # (H+K, hd)
            torch.mul(self.qk_in, cos, out=self.qk).addcmul_(self.rolled, sin)  # (H+K, hd)
            cache.k[i][0, p], cache.v[i][0, p] = self.k_new, self.v  # (K, hd) each, at position p
            k, v = cache.k[i][:1, : p + 1], cache.v[i][:1, : p + 1]  # (1, S, K, hd) each
            y = F.scaled_dot_product_attention(self.q_heads, k.transpose(1, 2), v.transpose(1, 2),
                                               enable_gqa=True)  # (1, H, 1, hd)
            P.add(self.x_from_o, w_o, P.vector_in(y.view(H * hd), self.o_pieces))  # x += W_o y
            self.norm(L.mlp_norm.weight, cfg.norm_eps)
            P.into(w_gate_up, self.h_for_gate_up, self.gate_up_out)  # gate_up = W_gate_up h
            F.silu(self.gate, inplace=True).mul_(self.up)  # (F,): silu(gate) * up, in gate's place
            P.add(self.x_from_down, w_down, self.gate_for_down)  # x += W_down (silu(gate) * up)
        cache.advance(1)
        self.norm(m.norm.weight, cfg.norm_eps)
        return P.fresh(self.unembed, self.h_for_unembed).view(1, 1, -1)  # (1, 1, V), a new tensor
