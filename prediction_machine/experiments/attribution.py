"""Why this token: split its logit into the parts of the model that add up to it.

The stream the final norm reads at the last position is a sum: the token vector, plus each
layer's attention output, plus each layer's MLP output (every layer adds to the stream and
nothing else does). The logit of token t is

    logit_t = w_t . (g * s * stream)      g: the final RMSNorm's gain, s = 1 / rms(stream)

The norm is not linear, because s depends on the whole stream. Holding s at the value the real
run computed makes it linear, and then the logit splits exactly into one term per part:
w_t . (g * s * part). An attention output is o(heads), and o is linear with no bias, so it
splits further into one term per head: that head's hd-slice of o's input, through its slice of o.

    result = attribute(lm, "When Mary and John went to the store, John gave a drink to", raw=True)
    result.logit, result.total()          # equal to float rounding
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.experiments import readout
from prediction_machine.model.hooks import Hooks

TOP_HEADS = 10  # heads listed by the size of their part


@dataclass
class Attribution:
    tokens: list[dict]
    token: dict  # {"id", "token"}: the token whose logit is split
    logit: float  # the real run's logit of that token
    embed: float  # the token vectors' part
    attn: list[float]  # L: each layer's attention part
    mlp: list[float]  # L: each layer's MLP part
    heads: list[list[float]]  # L x H: each head's part; a layer's heads add up to its attn part
    final_norm_scale: float  # s = 1 / rms of the final stream, held fixed

    def total(self) -> float:
        return self.embed + sum(self.attn) + sum(self.mlp)

    def top_heads(self, k: int = TOP_HEADS) -> list[dict]:
        cells = [(layer, h, v) for layer, row in enumerate(self.heads) for h, v in enumerate(row)]
        cells.sort(key=lambda c: -abs(c[2]))
        return [{"layer": layer, "head": h, "value": v} for layer, h, v in cells[:k]]

    def to_json(self) -> dict:
        layers = [{"layer": i, "attn": a, "mlp": m, "heads": h}
                  for i, (a, m, h) in enumerate(zip(self.attn, self.mlp, self.heads, strict=True))]
        return {"tokens": self.tokens, "token": self.token, "logit": self.logit, "embed": self.embed,
                "layers": layers, "sum": self.total(), "top_heads": self.top_heads(),
                "final_norm_scale": self.final_norm_scale}


@torch.inference_mode()
def attribute(lm, prompt: str | list[int], raw: bool = False, token: int | None = None) -> Attribution:
    """Direct logit attribution of `token` (default: the top-1 next token) at the last position."""
    model, cfg = lm.model, lm.config
    ids = prompt if isinstance(prompt, list) else readout.prompt_ids(lm, prompt, raw)
    readout.check_ids(ids, cfg.max_seq_len)
    if token is not None and not 0 <= token < cfg.vocab_size:
        raise ValueError(f"token must be an id in 0..{cfg.vocab_size - 1}, got {token}")
    seen: dict = {"heads": {}, "attn": {}, "mlp": {}}

    def keep(store, key):
        def hook(x):
            store[key] = x[0, -1].double()  # the last position only: (D,) or (H, hd)
            return x
        return hook

    hooks = Hooks(embed=keep(seen, "embed"),
                  attn_heads={i: keep(seen["heads"], i) for i in range(cfg.n_layers)},
                  attn_out={i: keep(seen["attn"], i) for i in range(cfg.n_layers)},
                  mlp_out={i: keep(seen["mlp"], i) for i in range(cfg.n_layers)},
                  resid={cfg.n_layers - 1: keep(seen, "final")})
    logits, _ = model(torch.tensor([ids]), last_only=True, hooks=hooks)  # (1, 1, V)
    t = int(logits[0, -1].argmax()) if token is None else token
    # The direction a part must point in to raise token t, with the frozen norm folded in.
    unembed = model.embed.weight if model.lm_head is None else model.lm_head.weight  # (V, D)
    final = seen["final"]  # (D,)
    scale = (final.pow(2).mean() + model.norm.eps).rsqrt()  # s, a number
    reader = unembed[t].double() * model.norm.weight.double() * scale  # (D,)

    def part(vec: torch.Tensor) -> float:
        return float(vec @ reader)  # (D,) . (D,)

    heads, attn = [], []
    for i, block in enumerate(model.blocks):
        y = seen["heads"][i]  # (H, hd): each head's output at the last position
        w_o = block.attn.o.weight.double().view(cfg.d_model, cfg.n_heads, cfg.head_dim)  # (D, H, hd)
        per_head = torch.einsum("dhk,hk->hd", w_o, y)  # (H, D): each head's slice through o
        heads.append([part(v) for v in per_head])
        attn.append(part(seen["attn"][i]))  # the real o output: its heads' parts add up to it
    mlp = [part(seen["mlp"][i]) for i in range(cfg.n_layers)]
    return Attribution(readout.texts(lm.tokenizer, ids), readout.token(lm.tokenizer, t),
                       float(logits[0, -1, t]), part(seen["embed"]), attn, mlp, heads, float(scale))
