"""Switch a part off: zero one attention head, all of a layer's heads, or one MLP, and compare.

Zero-ablation: the part's output is replaced by zeros for every position of the prompt, and the
rest of the model runs as usual on what is left. (Mean-ablation, replacing it by its average
over other prompts, is the other common choice; this file does zero only and says so.)

    part = Part("head", layer=3, head=5)
    result = ablate(lm, "When Mary and John went to the store, John gave a drink to", part, raw=True)
    result.target, result.target_prob   # the token the model chose, its probability before and after

Layers before the part's layer compute the same thing in both runs, so the run with the part off
starts from the stream the plain run already computed entering that layer
(Transformer.forward_from) and reruns only the layers from there on. The masks below hold one
part per batch row, so the head scan runs many ablations in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prediction_machine.experiments import readout
from prediction_machine.model.hooks import Hooks

METHOD = "zero"  # what "off" means here: the part's output replaced by zeros
KINDS = ("head", "layer_attn", "mlp")


@dataclass(frozen=True)
class Part:
    """One part of the model: a head (layer, head), a layer's attention (all its heads), or an MLP."""

    kind: str
    layer: int
    head: int | None = None

    def check(self, cfg) -> Part:
        """Raise ValueError naming the limit when the part does not exist in this model."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not 0 <= self.layer < cfg.n_layers:
            raise ValueError(f"layer must be in 0..{cfg.n_layers - 1}, got {self.layer}")
        if self.kind == "head" and self.head is None:
            raise ValueError(f"kind 'head' needs a head in 0..{cfg.n_heads - 1}")
        if self.kind == "head" and not 0 <= self.head < cfg.n_heads:
            raise ValueError(f"head must be in 0..{cfg.n_heads - 1}, got {self.head}")
        if self.kind != "head" and self.head is not None:
            raise ValueError(f"only kind 'head' takes a head; {self.kind!r} is the whole part")
        return self

    def to_json(self) -> dict:
        head = {"head": self.head} if self.kind == "head" else {}
        return {"kind": self.kind, "layer": self.layer, **head}


def parse_head(text: str) -> tuple[int, int]:
    """'3.5' -> (3, 5): layer 3, head 5, the way the page and the CLI name a head."""
    layer, dot, head = text.partition(".")
    if not dot or not layer.strip().isdigit() or not head.strip().isdigit():
        raise ValueError(f"a head is named LAYER.HEAD, e.g. 3.5; got {text!r}")
    return int(layer), int(head)


def keep_mask(parts: list[Part | None], cfg) -> dict:
    """Per-row multipliers (1 = keep, 0 = off) at each hook point, for a batch with one part per row.

    Row r switches off parts[r] (None: nothing). Returns {("attn_heads"|"mlp_out", layer): mask}
    with masks (B, 1, H, 1) for heads and (B, 1, 1) for an MLP, so one batch holds many ablations.
    """
    masks: dict = {}
    for r, part in enumerate(parts):
        if part is None:
            continue
        point = "mlp_out" if part.kind == "mlp" else "attn_heads"
        if (point, part.layer) not in masks:
            shape = (len(parts), 1, cfg.n_heads, 1) if point == "attn_heads" else (len(parts), 1, 1)
            masks[(point, part.layer)] = torch.ones(shape)
        m = masks[(point, part.layer)]
        if part.kind == "head":
            m[r, 0, part.head] = 0.0
        else:
            m[r] = 0.0  # all of the layer's heads, or the whole MLP output
    return masks


def hooks_for(masks: dict) -> Hooks:
    """Hooks that multiply each point's output by its mask (broadcast over positions and features)."""
    hooks = Hooks()
    for (point, layer), m in masks.items():
        getattr(hooks, point)[layer] = lambda y, m=m: y * m  # (B, T, H, hd) * (B, 1, H, 1), or (B, T, D)
    return hooks


@dataclass
class Ablation:
    """Before and after switching one part off, for the token the model chose before."""

    tokens: list[dict]  # the prompt's tokens
    part: Part
    target: dict  # {"id", "token"}: the top-1 next token of the plain run
    before: list[dict]  # the next-token table of the plain run
    after: list[dict]  # ... and with the part off
    target_prob: tuple[float, float]  # the target's probability before and after
    method: str = METHOD

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "target": self.target, "part": self.part.to_json(),
                "method": self.method, "before": {"top": self.before}, "after": {"top": self.after},
                "target_prob": {"before": self.target_prob[0], "after": self.target_prob[1]}}


@torch.inference_mode()
def ablate(lm, prompt: str | list[int], part: Part, raw: bool = False, top: int = readout.TOP) -> Ablation:
    """Run the prompt as it is and with `part` zeroed; compare the next-token tables.

    `prompt` is text (raw=False wraps the chat template) or the ids themselves.
    """
    model, cfg = lm.model, lm.config
    part.check(cfg)
    ids = prompt if isinstance(prompt, list) else readout.prompt_ids(lm, prompt, raw)
    readout.check_ids(ids, cfg.max_seq_len)
    logits, streams = readout.plain_run(model, ids)  # (V,), (L+1) x (1, T, D)
    before = logits.softmax(-1)  # (V,)
    hooks = hooks_for(keep_mask([part], cfg))
    after = model.forward_from(streams[part.layer], part.layer, hooks, last_only=True)[0, -1]  # (V,)
    after = after.float().softmax(-1)  # (V,)
    t = int(before.argmax())
    tok = lm.tokenizer
    return Ablation(readout.texts(tok, ids), part, readout.token(tok, t),
                    readout.top_tokens(before, tok, top), readout.top_tokens(after, tok, top),
                    (float(before[t]), float(after[t])))
