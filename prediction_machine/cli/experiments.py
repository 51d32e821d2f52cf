"""The "what if" commands that take the model apart: ablate, scan, attribute, patch.

Each prints a short table, or with --json the same answer the JSON API gives (experiments/).
"""

from __future__ import annotations

import sys

from prediction_machine.cli.output import UsageError, console, emit, load_model, visible


def register(sub) -> None:
    def common(s) -> None:
        s.add_argument("--raw", action="store_true", help="feed the prompt as it is (no chat template)")
        s.add_argument("--json", action="store_true", help="print JSON instead of a table")
        s.add_argument("--model", default=None, help="a name from `models`, or a checkpoint folder")

    s = sub.add_parser("ablate", help="switch one part off (zero it) and compare the next-token table")
    part = s.add_mutually_exclusive_group(required=True)
    part.add_argument("--head", metavar="L.H", help="one attention head, e.g. 3.5 = layer 3, head 5")
    part.add_argument("--layer-attn", type=int, metavar="L", help="all attention heads of layer L")
    part.add_argument("--mlp", type=int, metavar="L", help="the MLP of layer L")
    s.add_argument("prompt")
    common(s)
    s.set_defaults(func=cmd_ablate)

    s = sub.add_parser("scan", help="switch off each attention head in turn: how much the top token drops")
    s.add_argument("prompt")
    common(s)
    s.set_defaults(func=cmd_scan)

    s = sub.add_parser("attribute", help="split the top next token's logit into the parts that add up to it")
    s.add_argument("prompt")
    common(s)
    s.set_defaults(func=cmd_attribute)

    s = sub.add_parser("patch", help="copy the residual stream from one prompt's run into another's")
    s.add_argument("--source", required=True, help="the prompt whose stream is copied")
    s.add_argument("--target", required=True, help="the prompt that receives it")
    s.add_argument("--layer", type=int, default=None,
                   help="the stream entering this layer (0 = the token vectors); with --position: one patch")
    s.add_argument("--position", type=int, default=None, help="the token position to copy")
    common(s)
    s.set_defaults(func=cmd_patch)


def numbers(data: dict) -> dict:
    from prediction_machine.jsonsafe import json_numbers

    return json_numbers(data)  # NaN (e.g. recovery with nothing to recover) -> null


def usage(call):
    """Run a library call; its ValueError (a limit, a part outside the model) is a usage error."""
    try:
        return call()
    except ValueError as e:
        raise UsageError(str(e)) from None


def pct(p: float) -> str:
    return f"{100 * p:6.2f}%"


def cmd_ablate(args) -> None:
    from prediction_machine.experiments.ablation import Part, ablate, parse_head

    lm = load_model(args.model)
    if args.head is not None:
        layer, head = usage(lambda: parse_head(args.head))
        part = Part("head", layer, head)
    elif args.layer_attn is not None:
        part = Part("layer_attn", args.layer_attn)
    else:
        part = Part("mlp", args.mlp)
    result = usage(lambda: ablate(lm, args.prompt, part, raw=args.raw))
    if args.json:
        emit(numbers(result.to_json()))
        return
    before, after = result.target_prob
    console.print(f"{describe(part)} set to zero: {visible(result.target['token'])} "
                  f"{pct(before)} -> {pct(after)}")
    for b, a in zip(result.before[:5], result.after[:5], strict=True):
        console.print(f"  {pct(b['model_prob'])} {visible(b['token']):<16} | "
                      f"{pct(a['model_prob'])} {visible(a['token'])}", markup=False, highlight=False)


def describe(part) -> str:
    if part.kind == "head":
        return f"head {part.layer}.{part.head}"
    return f"layer {part.layer}'s " + ("attention heads" if part.kind == "layer_attn" else "MLP")


def cmd_scan(args) -> None:
    from prediction_machine.experiments.head_scan import head_scan

    lm = load_model(args.model)

    def progress(done: int, total: int) -> None:
        print(f"\rlayer {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    scan = usage(lambda: head_scan(lm, args.prompt, raw=args.raw, progress=progress))
    if args.json:
        emit(numbers(scan.to_json()))
        return
    console.print(f"{visible(scan.target['token'])} at {pct(scan.base_prob)} with every head on; "
                  "the heads whose removal lowers it most:", markup=False, highlight=False)
    cells = sorted(((d, layer, h) for layer, row in enumerate(scan.drop) for h, d in enumerate(row)),
                   reverse=True)
    for d, layer, h in cells[:10]:
        console.print(f"  head {layer}.{h}: -{100 * d:.2f} points")


def cmd_attribute(args) -> None:
    from prediction_machine.experiments.attribution import attribute

    lm = load_model(args.model)
    a = usage(lambda: attribute(lm, args.prompt, raw=args.raw))
    out = a.to_json()
    if args.json:
        emit(numbers(out))
        return
    console.print(f"logit of {visible(a.token['token'])} = {a.logit:.4f}; the parts below add up to "
                  f"{a.total():.4f} (final norm's scale held at {a.final_norm_scale:.4f})",
                  markup=False, highlight=False)
    console.print(f"  embedding {a.embed:+.4f}")
    for row in out["layers"]:
        console.print(f"  layer {row['layer']:2d}  attention {row['attn']:+.4f}  MLP {row['mlp']:+.4f}")
    heads = ", ".join(f"{h['layer']}.{h['head']} {h['value']:+.3f}" for h in out["top_heads"][:5])
    console.print(f"  largest heads: {heads}")


def cmd_patch(args) -> None:
    from prediction_machine.experiments import patching

    if (args.layer is None) != (args.position is None):
        raise UsageError("--layer and --position go together (one patch), or neither (the whole grid)")
    lm = load_model(args.model)
    if args.layer is not None:
        cell = (args.layer, [args.position])
        one = usage(lambda: patching.patch(lm, args.source, args.target, *cell, raw=args.raw))
        if args.json:
            emit(numbers(one))
            return
        console.print(f"{visible(one['answer']['token'])}: source {pct(one['source_prob'])}, target "
                      f"{pct(one['target_prob'])}, patched {pct(one['patched_prob'])} "
                      f"(recovered {one['recovery']:.2f})", markup=False, highlight=False)
        return
    grid = usage(lambda: patching.patch_grid(lm, args.source, args.target, args.raw))
    out = grid.to_json(lm.tokenizer)
    if args.json:
        emit(numbers(out))
        return
    console.print(f"share of {visible(out['answer']['token'])} recovered; row = the stream entering "
                  "that layer (0 = token vectors), column = position", markup=False, highlight=False)
    console.print("      " + " ".join(f"{visible(t['token'])[:5]:>5}" for t in out["target_tokens"]),
                  markup=False, highlight=False)
    for layer, row in enumerate(grid.recovery()):
        console.print(f"{layer:5d} " + " ".join(f"{v:5.2f}" for v in row), markup=False, highlight=False)
