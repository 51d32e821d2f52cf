"""A faster numeric path for inference: the same fp32 arithmetic as transformer.py, laid out for speed.

transformer.py is the textbook. This file is the engine room: it computes the same function
(tests/test_fastpath.py bounds the difference) with four changes that the benchmark
(bench/bench_engine.py) shows pay on a 2-core CPU:

1. Weight layouts chosen by measurement. Each matrix can be read in three layouts (Matrices):
   the model's own matrices, oneDNN's packed copy (the CPU math library inside PyTorch; tuned
   for PACK_ROWS rows, it keeps both cores' vector units busy), or cut in one piece per core
   and multiplied by one batched product. Which is fastest depends on the processor and on the
   number of rows, so layout_probe.py times them on this machine at the first load and the
   decoder uses its pick for each row count (docs/performance.md has the figures, with the
   machine and date of each).
2. Fused matrices: Q, K and V become one ((H+2K)*hd, D) matrix, gate and up one (2F, D)
   matrix, so each layer makes 4 matrix products instead of 7 (fewer trips through PyTorch).
   The loader reads them into one buffer each (model/stacks.py): the stack is not a copy.
3. Fewer small operations: RMSNorm in place (at one row, its mean square as one dot product and
   the scaling as one addcmul), RoPE applied to queries and keys together as one roll and one
   addcmul, the residual added in place (at one row, by the product itself), one row's keys and
   values written by a slice, and the positions, the mask and the cache row indices computed once
   per pass, not per layer.
4. One stream's decode step (one row, one new token, the split or plain layout) runs in
   one_row.py: the same operations, writing into buffers made once, so a token allocates a few
   small tensors only.

What was tried and dropped: bf16 weights and activations, and int8 or int4 weights in
PyTorch's formats (all lossy, so they fail the 1e-3 honesty bound; the int4 kernel with fp32
activations was also 17x slower), and torch.compile (about 500 s to compile on 2 cores, and
slower here). The package's own Q4_1 blocks would be lossless (the fp32 weights are their exact
expansion), but a product from them written in PyTorch and compiled was slower than fp32
(docs/performance.md, in its dated log).

Memory: the packed matrices are a second copy of the layers (538 MB with the unembedding);
"plain" and "split" read the textbook module's own weights (split as a view of each stack), which
tracing (record=True) still uses: attention weights always come from the textbook path. Only the
layouts the probe picked are kept. Without oneDNN (a PyTorch built without it)
the probe chooses between the other two.

Shape letters as in transformer.py: B batch, T new positions, S key positions, D d_model,
H query heads, K kv heads, hd head_dim, F d_ff, V vocabulary.
"""

from __future__ import annotations

import math
import threading

import torch
import torch.nn.functional as F

from prediction_machine.config import PRECISIONS
from prediction_machine.engine import layout_probe, one_row
from prediction_machine.engine.layout_probe import Choice
from prediction_machine.model.transformer import KVCache, Transformer

PACK_ROWS = 32  # the batch oneDNN tunes its layout for; bench: from 4 to 512 rows none is slower than plain
ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
LAYOUTS = ("plain", "packed", "split")  # the candidates; layout_probe.py times them on this machine


def split_count(out: int) -> int:
    """How many pieces "split" cuts a matrix's `out` rows into: one per intra-op thread, if they divide it.

    >>> split_count(960) if torch.get_num_threads() == 2 else 2
    2
    """
    n = max(1, torch.get_num_threads())
    while out % n:
        n -= 1
    return n


def one_buffer(parts) -> torch.Tensor | None:
    """The stack of `parts` (each (out_part, in)) if they lie one after another in one buffer, else None."""
    first, offset = parts[0].detach(), parts[0].storage_offset()
    for p in parts:
        same = p.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
        if not (same and p.is_contiguous() and p.dtype == first.dtype and p.shape[1:] == first.shape[1:]
                and p.storage_offset() == offset):
            return None
        offset += p.numel()
    return first.as_strided((sum(p.shape[0] for p in parts), *first.shape[1:]), first.stride())  # (out, in)


class Matrices:
    """Weight matrices W (out, in), stacked along `out`: `m.times(x, layout)` is x @ W.T in that layout.

    - "plain": the model's own matrices, one F.linear over their stack (no copy). MKL reads them on one core
      at a few rows.
    - "packed": one oneDNN blocked copy of the stack (W.T without oneDNN); both cores at any rows.
    - "split": the stack cut into split_count() pieces of rows, multiplied by one batched product
      (torch.bmm), which gives each intra-op thread its own piece: both cores read at one row.
    """

    def __init__(self, *parts: torch.Tensor):
        if len(parts) > 1 and (whole := one_buffer(parts)) is not None:
            self.stack = whole  # (out, in): the loader read the parts into one buffer (model/stacks.py)
        elif len(parts) > 1:
            # One buffer holds the stack, and the module's own weights become views of it: the split
            # layout then reads the stack as it is, and no weight is held twice. Same values, so the
            # textbook model computes exactly what it did.
            self.stack = torch.cat([p.detach() for p in parts])  # (out, in)
            start = 0
            for p in parts:
                p.data = self.stack[start : start + p.shape[0]]  # (out_part, in): a view of the stack
                start += p.shape[0]
        else:
            self.stack = parts[0].detach()  # (out, in)
        self.out, self.inp = self.stack.shape
        self.onednn = ONEDNN
        self.stored: dict[str, torch.Tensor] = {}  # layout -> its copy (plain needs none)

    def stacked(self) -> torch.Tensor:
        return self.stack  # (out, in)

    def prepare(self, layout: str) -> None:
        """Make `layout`'s copy if it has none yet (packing the whole model takes about a second)."""
        if layout == "plain" or layout in self.stored:
            return
        w = self.stacked().float().contiguous()  # (out, in)
        if layout == "packed":
            if self.onednn:
                self.stored[layout] = torch.ops.mkldnn._reorder_linear_weight(w, PACK_ROWS)  # blocked
            else:
                self.stored[layout] = w.t().contiguous()  # (in, out)
        elif layout == "split":
            n = split_count(self.out)
            self.stored[layout] = w.view(n, self.out // n, self.inp)  # (n, out/n, in): a view of w
        else:
            raise ValueError(f"unknown layout {layout!r}: choose one of {', '.join(LAYOUTS)}")

    def drop(self, layout: str) -> None:
        self.stored.pop(layout, None)

    def times(self, x: torch.Tensor, layout: str) -> torch.Tensor:
        """x (..., in) -> (..., out), in `layout` if it is prepared, else plain."""
        w = self.stored.get(layout)
        if w is None:
            return F.linear(x, self.stack)  # (..., out): one product over the stack
        if layout == "split":
            n, lead = w.shape[0], x.shape[:-1]
            if x.numel() == self.inp:  # one row: the result is already in order (no permute, no copy)
                # x as a transposed (1, in) row: a column strided as (in, 1) made by .view is not
                # BLAS-shaped, and bmm then runs a generic kernel, 10x slower (measured)
                xt = x.reshape(1, self.inp).t()  # (in, 1)
                return torch.bmm(w, xt.expand(n, -1, -1)).view(*lead, self.out)  # (n, out/n, 1) -> (..., out)
            xt = x.reshape(-1, self.inp).t()  # (in, R), R = rows
            y = torch.bmm(w, xt.expand(n, *xt.shape))  # (n, out/n, in) x (n, in, R) -> (n, out/n, R)
            return y.permute(2, 0, 1).reshape(*lead, self.out)  # (..., out)
        if self.onednn:
            return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        return x @ w

    def add_times(self, y: torch.Tensor, x: torch.Tensor, layout: str) -> None:
        """y += x @ W.T in place, y (..., out) contiguous: the residual stream's add, made by the
        product itself where the layout allows (one operation fewer, and no temporary)."""
        w = self.stored.get(layout)
        if w is None:  # plain: addmm_ adds the product into y
            y.view(-1, self.out).addmm_(x.reshape(-1, self.inp), self.stack.t())  # (R, out) += x W.T
        elif layout == "split" and x.numel() == self.inp:  # one row: y cut as the pieces are
            n = w.shape[0]
            xt = x.reshape(1, self.inp).t()  # (in, 1), as in times()
            y.view(n, self.out // n, 1).baddbmm_(w, xt.expand(n, -1, -1))  # (n, out/n, 1) += w @ x
        else:
            y.add_(self.times(x, layout))  # (..., out)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float,
             zero: torch.Tensor | None = None) -> torch.Tensor:
    """transformer.RMSNorm's arithmetic, x * rsqrt(mean(x^2) + eps) * weight, with fewer operations.

    Many rows: operation for operation as the textbook (the same bits), with fewer temporaries.
    One row (a decode step), given `zero` (D,) zeros: the mean square is one dot product read as a
    Python number, and addcmul computes zero + r * x * weight in one operation, 2 operations instead
    of 6 (a Python number as the multiplier makes no tensor). The dot product adds in another order,
    so r may differ from the textbook's in its last bit.
    """
    D = x.shape[-1]
    if zero is None or x.numel() != D:
        return x * x.pow(2).mean(-1, keepdim=True).add_(eps).rsqrt_() * weight  # (..., D)
    flat = x.reshape(D)  # (D,)
    r = 1.0 / math.sqrt(float(flat.dot(flat)) / D + eps)  # rsqrt(mean(x^2) + eps), one number
    return torch.addcmul(zero, x, weight, value=r)  # (..., D): 0 + r * x * weight


class FusedLayer:
    """One block's weights, fused and packed: four matrices and two norm gains."""

    def __init__(self, block):
        a, m = block.attn, block.mlp
        self.attn_norm, self.mlp_norm = block.attn_norm, block.mlp_norm  # RMSNorm modules: gain .weight (D,)
        self.qkv = Matrices(a.q.weight, a.k.weight, a.v.weight)  # ((H+2K)*hd, D)
        self.o = Matrices(a.o.weight)  # (D, H*hd)
        self.gate_up = Matrices(m.gate.weight, m.up.weight)  # (2F, D)
        self.down = Matrices(m.down.weight)  # (D, F)


class FusedDecoder:
    """Called like a Transformer: `logits, record = decoder(idx, cache=None, record=False, last_only=False)`.

    Its layouts start plain (`choice`, if given, is used at once); layout_probe.tune switches them."""

    def __init__(self, model: Transformer, choice: Choice | None = None):
        self.model, self.cfg = model, model.cfg
        with torch.no_grad():
            self.layers = [FusedLayer(b) for b in model.blocks]
            head = model.embed.weight if model.lm_head is None else model.lm_head.weight
            self.unembed = Matrices(head)  # (V, D)
        half = model.cfg.head_dim // 2
        sign = torch.cat([-torch.ones(half), torch.ones(half)])  # (hd,): rotate_half's minus, as a sign
        self.rope_sin_signed = model.rope_sin * sign  # (max_len, hd)
        self.zero = torch.zeros(model.cfg.d_model)  # (D,): rms_norm's one-row start
        self.choice = Choice.default()  # the plain layout until a probe (layout_probe.tune) says otherwise
        self.tuning: threading.Thread | None = None  # the background probe, while it runs
        self.tuning_error: str | None = None
        self.local = threading.local()  # each thread's one_row.OneRowStep: its buffers are written in place
        if choice is not None:
            self.use(choice)

    # ------------------------------------------------------------------------- layouts (layout_probe.py)

    def matrices(self) -> list[Matrices]:
        return [m for L in self.layers for m in (L.qkv, L.o, L.gate_up, L.down)] + [self.unembed]

    def describe_model(self) -> str:
        c = self.cfg
        return f"{c.n_layers} layers, d_model {c.d_model}, d_ff {c.d_ff}, vocabulary {c.vocab_size}"

    def shapes(self) -> list[tuple[int, int]]:
        return [(m.out, m.inp) for m in self.matrices()]

    def available_layouts(self) -> list[str]:
        """The candidates on this PyTorch: "packed" needs oneDNN, "split" more than one thread."""
        threads = torch.get_num_threads()
        return [lay for lay in LAYOUTS if (lay != "packed" or ONEDNN) and (lay != "split" or threads > 1)]

    def prepare(self, layout: str) -> None:
        with torch.no_grad():
            for m in self.matrices():
                m.prepare(layout)

    def use(self, choice: Choice) -> None:
        """Switch to `choice` (its layouts prepared first) and drop the copies it does not use."""
        for layout in set(choice.layouts.values()):
            self.prepare(layout)
        self.choice = choice  # one assignment: a forward pass running now keeps the choice it started with
        for layout in set(LAYOUTS) - set(choice.layouts.values()):
            for m in self.matrices():
                m.drop(layout)

    def bytes_to_come(self) -> int:
        """While the probe runs, an upper bound of what it adds: every candidate's copy, and the model's
        own weights, which packing reads in from the cache file (they may be partly resident already)."""
        if self.tuning is None or not self.tuning.is_alive():
            return 0
        weights = sum(m.out * m.inp * 4 for m in self.matrices())  # fp32, every matrix once
        return weights + weights * ("packed" in self.available_layouts())  # "split" is a view: no copy

    def one_token_products(self, layout: str, rows: int) -> None:
        """Every matrix product of one decode step at `rows` rows, in `layout`: what the probe times."""
        with torch.inference_mode():
            x = {n: torch.ones(rows, n) for n in {m.inp for m in self.matrices()}}  # (rows, in) per width
            for m in self.matrices():
                m.times(x[m.inp], layout)

    def __call__(self, idx, cache: KVCache | None = None, record: bool = False, last_only: bool = False):
        if record:
            return self.model(idx, cache=cache, record=True, last_only=last_only)  # tracing: textbook path
        with torch.inference_mode():
            return self.forward(idx, cache, last_only), None

    def one_row_step(self, layout: str = "split") -> one_row.OneRowStep | None:
        """This thread's one-row step, made (again) for `layout` as prepared now; None if it cannot run."""
        pieces = one_row.pieces(self, layout)
        if pieces is None:
            return None
        step = getattr(self.local, "step", None)
        if step is None or step.layout != layout or step.pieces != pieces:
            step = self.local.step = one_row.OneRowStep(self, pieces, layout)
        return step

    def forward(self, idx: torch.Tensor, cache: KVCache | None, last_only: bool) -> torch.Tensor:
        cfg, m, choice = self.cfg, self.model, self.choice
        B, T = idx.shape
        lay = choice.pick(B * T)  # every layer's products have B*T rows
        if B == 1 and T == 1 and cache is not None and (step := self.one_row_step(lay)):
            return step(idx, cache)  # (1, 1, V): one stream's decode step
        H, K, hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        pos = cache.positions(T) if cache is not None else torch.arange(T).expand(B, T)  # (B, T)
        S = int(pos.max()) + 1  # keys needed by the furthest row
        if S > cfg.max_seq_len:
            raise ValueError(f"position {S - 1} is beyond the context of {cfg.max_seq_len}")
        cos, sin = m.rope_cos[pos][:, :, None], self.rope_sin_signed[pos][:, :, None]  # (B, T, 1, hd)
        # Decoding one row needs no mask (it sees every cached key); a fresh prompt is plain causal.
        single_row = B == 1 and (cache is None or int(cache.lengths[0]) == 0 or T == 1)
        mask = None
        if not single_row:
            mask = (torch.arange(S)[None, None, :] <= pos[:, :, None])[:, None]  # (B, 1, T, S)
        rows = torch.arange(B)[:, None].expand_as(pos)  # (B, T): which cache row each position goes to
        # one row's new positions are S-T..S-1 in a row: written as a slice, not by index
        span = slice(S - T, S) if B == 1 else None
        zero = self.zero
        x = m.embed(idx)  # (B, T, D)
        for i, L in enumerate(self.layers):
            h = rms_norm(x, L.attn_norm.weight, cfg.norm_eps, zero)  # (B, T, D)
            qkv = L.qkv.times(h, lay).view(B, T, H + 2 * K, hd)  # (B, T, H+2K, hd)
            qk = qkv[:, :, : H + K]  # (B, T, H+K, hd): queries and keys rotate together
            # "rotate half" RoPE: rotate_half(x) = (-x2, x1) is x rolled by hd/2, its sign in the sin table
            qk = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin)  # (B, T, H+K, hd)
            q, k, v = qk[:, :, :H], qk[:, :, H:], qkv[:, :, H + K :]  # (B, T, H|K|K, hd)
            if cache is not None and span is not None:  # cache.store, with S computed once per pass
                cache.k[i][:, span], cache.v[i][:, span] = k, v
            elif cache is not None:  # rows of different lengths: each position by its index
                cache.k[i][rows, pos], cache.v[i][rows, pos] = k, v
            if cache is not None:
                k, v = cache.k[i][:, :S], cache.v[i][:, :S]  # (B, S, K, hd) each
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),  # (B, H|K, T|S, hd)
                attn_mask=mask, is_causal=single_row and T > 1, enable_gqa=True,
            )  # (B, H, T, hd)
            L.o.add_times(x, y.transpose(1, 2).reshape(B, T, H * hd), lay)  # x (B, T, D) += ..., in place
            h = rms_norm(x, L.mlp_norm.weight, cfg.norm_eps, zero)  # (B, T, D)
            gate, up = L.gate_up.times(h, lay).chunk(2, dim=-1)  # 2 x (B, T, F)
            L.down.add_times(x, F.silu(gate) * up, lay)  # x (B, T, D) += ...
        if cache is not None:
            cache.advance(T)
        if last_only:
            x = x[:, -1:]  # (B, 1, D)
        h = rms_norm(x, m.norm.weight, cfg.norm_eps, zero)  # (..., D)
        return self.unembed.times(h, choice.pick(h.numel() // cfg.d_model))  # (B, T, V)


def decoder_for(model: Transformer, precision: str, probe_layouts: bool = True):
    """The callable that generation should use for `precision` (see PRECISIONS).

    The fused decoder answers at once on the plain layout; its layouts for this machine are read
    back or probed on a background thread (layout_probe.tune_in_background), then switched to.
    With `probe_layouts` False (a one-shot command) a machine with nothing stored keeps the plain
    layout rather than start a probe it would not live to use.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model
    decoder = FusedDecoder(model)
    layout_probe.tune_in_background(decoder, probe_if_missing=probe_layouts)
    return decoder
