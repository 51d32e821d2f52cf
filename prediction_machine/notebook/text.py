"""Each figure as a plain-text table: what a notebook shows where HTML is not shown (a terminal, a
plain-text viewer, an untrusted notebook), read from the same JSON the figure draws.

Token text is shown with repr(), so spaces and line breaks stay visible, as the page's chips show them.
"""

from __future__ import annotations


def _tok(token: dict) -> str:
    return repr(token["text"])


def _pct(p: float | None) -> str:
    return "-" if p is None else f"{p * 100:.1f}%"


def _trace(d: dict) -> list[str]:
    t = d["trace"]
    points = t["embedding"]["projection"]["points"]
    ex = t["embedding"]["projection"]["explained"]
    lines = [f"{d['tokenize']['count']} tokens of yours; the model reads {len(t['tokens'])} "
             f"(chat template included). Embedding: {t['embedding']['dims']} numbers per token.",
             f"Projection onto the vocabulary's two main directions ({_pct(ex[0])} and {_pct(ex[1])} "
             "of its variance):", f"{'#':>3}  {'token':<18} {'x':>8} {'y':>8}  nearest"]
    for i, (token, p) in enumerate(zip(t["tokens"], points, strict=True)):
        near = ", ".join(_tok(n["token"]) for n in p["neighbours"][:3])
        lines.append(f"{i:>3}  {_tok(token):<18} {p['x']:>8.3f} {p['y']:>8.3f}  {near}")
    return lines


def _lens(d: dict) -> list[str]:
    t = d["trace"]["transformer"]
    chosen = t["chosen"]
    lines = [f"The logit lens: each layer's guess for the next token; {_tok(chosen['token'])} "
             "followed through the layers.", f"{'layer':>5}  {'top guess':<18} {'prob':>7}  "
             f"{'followed':>8} {'rank':>6}"]
    for g, p, r in zip(t["lens"], chosen["probs"], chosen["ranks"], strict=True):
        top = g["top"][0]
        lines.append(f"{g['layer']:>5}  {_tok(top['token']):<18} {_pct(top['prob']):>7}  {_pct(p):>8} {r:>6}")
    return lines


def _table(pred: dict, chosen: int | None) -> list[str]:
    lines = [f"{'token':<18} {'logit':>8} {'model':>7} {'after':>7} {'cumul.':>7}"]
    for r in pred["rows"]:
        mark = "  <- drawn" if r["id"] == chosen else ""
        lines.append(f"{_tok(r['token']):<18} {r['logit']:>8.2f} {_pct(r['model_prob']):>7} "
                     f"{_pct(r['prob']):>7} {r['cumulative']:>7.3f}{mark}")
    return lines


def _draw(draw: dict | None) -> str:
    if draw is None:
        return "No draw (no seed)."
    if draw.get("u") is None:
        return f"Temperature 0: no random number; the top token {_tok(draw['token'])} is taken."
    return (f"Random number u = {draw['u']:.4f} lands in {_tok(draw['token'])}'s stretch, from "
            f"{draw['cumulative_before']:.4f}.")


def _prediction(d: dict) -> list[str]:
    p, s = d["preview"], d["settings"]
    draw = p.get("draw")
    return ([f"Next token after the prompt, at temperature {s['temperature']}, top-k {s['top_k']}, "
             f"top-p {s['top_p']}, min-p {s['min_p']}:"]
            + _table(p["prediction"], draw["id"] if draw else None) + [_draw(draw)])


def _generation(d: dict) -> list[str]:
    lines = [f"Generated {d['done']['tokens']} tokens ({d['done']['finish']}): {d['done']['text']!r}",
             f"{'step':>4}  {'token':<18} {'prob':>7} {'model':>7} {'u':>7} {'ms':>7}"]
    for s in d["steps"]:
        u = "-" if s["draw"]["u"] is None else f"{s['draw']['u']:.4f}"
        lines.append(f"{s['index'] + 1:>4}  {_tok(s['token']):<18} {_pct(s['prob']):>7} "
                     f"{_pct(s['model_prob']):>7} {u:>7} {s['ms']:>7.1f}")
    return lines


def _attention(d: dict) -> list[str]:
    mean = d["attention"]["mean"]  # [query][key], averaged over every layer and head
    lines = [f"Attention over {len(d['tokens'])} tokens, {d['n_layers']} layers x {d['n_heads']} heads. "
             "Averaged over all of them, each token reads most from:"]
    for q, token in enumerate(d["tokens"]):
        k = max(range(q + 1), key=lambda j: mean[q][j])
        lines.append(f"{q:>3}  {_tok(token):<18} <- {_tok(d['tokens'][k])} ({_pct(mean[q][k])})")
    return lines


def _ablation(d: dict) -> list[str]:
    part = d["part"]
    name = f"{part['kind']} {part['layer']}" + (f".{part['head']}" if "head" in part else "")
    before, after = d["target_prob"]["before"], d["target_prob"]["after"]
    lines = [f"Switched off ({d['method']}): {name}. The model's choice {d['target']['token']!r}: "
             f"{_pct(before)} before, {_pct(after)} after.", f"{'before':<26} {'after':<26}"]
    for b, a in zip(d["before"]["top"], d["after"]["top"], strict=False):
        lines.append(f"{b['token']!r:<18} {_pct(b['model_prob']):>7} "
                     f"{a['token']!r:<18} {_pct(a['model_prob']):>7}")
    return lines


KINDS = {"trace": _trace, "lens": _lens, "prediction": _prediction, "generation": _generation,
         "attention": _attention, "ablation": _ablation}


def describe(kind: str, data: dict) -> str:
    """The figure `kind` as lines of text."""
    return "\n".join(KINDS[kind](data))
