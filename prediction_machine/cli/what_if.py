"""`branch`, `lens` and `steer`: the "what if" experiments that change or read a whole generation.

    prediction-machine branch --raw --step 2 --rank 3 -- "One, two, three,"   # force the 3rd likeliest
    prediction-machine lens --raw --new-tokens 8 -- "The capital of France is"   # which layer decided
    prediction-machine steer --raw --layer 15 --strength 4 --positive "I love it" \\
        --negative "I hate it" -- "The movie was"
    prediction-machine steer --safety --strength 1      # the tiny chat model's preference direction

Every command prints JSON with --json (the same objects the API answers) and exits with
status 2 and one line naming the limit when the input is wrong.
"""

from __future__ import annotations

from prediction_machine import limits
from prediction_machine.cli.output import UsageError, check_temperature, console, emit, finite, load_model


def register(sub) -> None:
    def common(s, prompt_required=True):
        s.add_argument("prompt", nargs=None if prompt_required else "?", help="the prompt (after --)")
        s.add_argument("--raw", action="store_true", help="feed the prompt as it is (no chat template)")
        s.add_argument("--model", default=None,
                       help="a name from `models`, or a checkpoint folder (default: SmolLM2)")
        s.add_argument("--json", action="store_true", help="print JSON instead of text")
        s.add_argument("--new-tokens", type=int, default=limits.EXPERIMENT_NEW_TOKENS,
                       help=f"tokens to generate, 1 to {limits.MAX_EXPERIMENT_NEW_TOKENS} "
                            "(default %(default)s)")
        s.add_argument("--temperature", type=finite, default=limits.EXPERIMENT_TEMPERATURE,
                       help=f"0 = greedy (default); up to {limits.MAX_TEMPERATURE:g}")
        s.add_argument("--seed", type=int, default=None, help="random seed, for a temperature above 0")

    s = sub.add_parser("branch",
                       help="force another token at one step of a generation; both runs side by side")
    common(s)
    s.add_argument("--step", type=int, required=True, help="the step to change, 0 = the first new token")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--token", type=int, help="the forced token's id")
    g.add_argument("--rank", type=int, help="the forced token's place in that step's table (1 to 5)")
    s.set_defaults(func=cmd_branch)

    s = sub.add_parser("lens", help="every generated token x every layer: rank, probability, deciding layer")
    common(s)
    s.set_defaults(func=cmd_lens)

    s = sub.add_parser("steer", help="add a direction to the residual stream and compare the answers")
    common(s, prompt_required=False)
    s.add_argument("--positive", action="append", default=[], help="a text on the positive side (repeat)")
    s.add_argument("--negative", action="append", default=[], help="a text on the negative side (repeat)")
    s.add_argument("--layer", type=int, default=None, help="the layer whose stream is steered")
    s.add_argument("--strength", type=finite, default=1.0,
                   help=f"how much of the direction is added, -{limits.MAX_STEER_STRENGTH:g} to "
                        f"{limits.MAX_STEER_STRENGTH:g} (default %(default)s)")
    s.add_argument("--safety", action="store_true",
                   help="the tiny chat model's rejected->chosen direction: the safety table with it "
                        "added, removed and off (no prompt)")
    s.set_defaults(func=cmd_steer)


# ----------------------------------------------------------------------------- checks


def checked_run(args):
    """The model, the prompt's ids and the sampling settings, or a UsageError naming the limit."""
    from prediction_machine.experiments.readout import prompt_ids
    from prediction_machine.inference.sampling import SamplingParams

    if not 1 <= args.new_tokens <= limits.MAX_EXPERIMENT_NEW_TOKENS:
        raise UsageError(f"--new-tokens must be 1 to {limits.MAX_EXPERIMENT_NEW_TOKENS}, "
                         f"got {args.new_tokens}")
    params = SamplingParams(check_temperature(args.temperature))
    if not args.prompt:
        raise UsageError("the prompt is empty: give some text (after --)")
    lm = load_model(args.model)
    try:
        ids = prompt_ids(lm, args.prompt, raw=args.raw)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if len(ids) + args.new_tokens > lm.config.max_seq_len:
        raise UsageError(f"the prompt is {len(ids)} tokens and --new-tokens {args.new_tokens}; "
                         f"together they exceed the context of {lm.config.max_seq_len}")
    return lm, ids, params


def checked_layer(lm, layer: int | None) -> int:
    n = lm.config.n_layers
    if layer is None or not 0 <= layer < n:
        raise UsageError(f"--layer must be 0 to {n - 1} for this model, got {layer}")
    return layer


# ----------------------------------------------------------------------------- commands


def cmd_branch(args) -> None:
    from prediction_machine.experiments import branching

    lm, ids, params = checked_run(args)
    try:
        b = branching.branch(lm, ids, params, args.new_tokens, args.step, args.token, args.seed, args.rank)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        emit(b.to_json(lm.tokenizer))
        return
    out = b.to_json(lm.tokenizer)
    for name in ("original", "branch"):
        console.print(f"[bold]{name}[/bold]", highlight=False)
        console.print(out[name]["text"], markup=False, highlight=False)
        marked = (f"{'>' if s['forced'] else ''}{s['token']!r} {s['prob']:.2f}" for s in out[name]["steps"])
        line = "  ".join(marked)  # each token with its probability; > marks the forced one
        console.print(line, markup=False, highlight=False)


STRIP = ((1, "█"), (5, "▓"), (50, "▒"))  # rank at most 1, 5, 50 -> its mark; anything lower is "░"


def strip(ranks: list[int]) -> str:
    """One character per layer. strip([900, 40, 3, 1]) -> '░▒▓█'"""
    return "".join(next((mark for top, mark in STRIP if r <= top), "░") for r in ranks)


def cmd_lens(args) -> None:
    from prediction_machine.experiments import generation_lens

    lm, ids, params = checked_run(args)
    lens = generation_lens.generate_and_read(lm, ids, params, args.new_tokens, args.seed)
    out = lens.to_json(lm.tokenizer)
    if args.json:
        emit(out)
        return
    console.print(f"rank after each of {out['layers']} layers: █ top, ▓ top 5, ▒ top 50, ░ lower",
                  highlight=False)
    for t, p, ranks, d in zip(out["tokens"], out["model_probs"], out["rank"], out["decided"], strict=True):
        decided = "never top" if d is None else f"decided at layer {d}"
        row = f"{t['token']!r:>14} {p:6.1%}  {strip(ranks)}  {decided}"
        console.print(row, markup=False, highlight=False)


def cmd_steer(args) -> None:
    from prediction_machine.experiments import steering

    if not abs(args.strength) <= limits.MAX_STEER_STRENGTH:
        most = limits.MAX_STEER_STRENGTH
        raise UsageError(f"--strength must be -{most:g} to {most:g}, got {args.strength:g}")
    if args.safety:
        return steer_safety(args, steering)
    if args.prompt is None:
        raise UsageError("steer needs a prompt (after --), or --safety")
    for side in ("positive", "negative"):
        texts = getattr(args, side)
        if not 1 <= len(texts) <= limits.MAX_STEER_TEXTS:
            raise UsageError(f"--{side} must be given 1 to {limits.MAX_STEER_TEXTS} times, got {len(texts)}")
    if not all(args.positive + args.negative):
        raise UsageError("a steering text is empty: each --positive and --negative needs some text")
    lm, ids, params = checked_run(args)
    layer = checked_layer(lm, args.layer)
    from prediction_machine.experiments.readout import prompt_ids

    try:
        pos = [prompt_ids(lm, t, raw=True) for t in args.positive]
        neg = [prompt_ids(lm, t, raw=True) for t in args.negative]
    except ValueError as e:
        raise UsageError(f"a steering text: {e}") from None
    direction = steering.steering_direction(lm.model, pos, neg, layer)
    out = steering.steer(lm, ids, direction, layer, args.strength, params, args.new_tokens, args.seed)
    out = out.to_json(lm.tokenizer)
    if args.json:
        emit(out)
        return
    console.print(f"direction at layer {layer}, norm {out['direction_norm']:.2f}, strength {args.strength:g}",
                  highlight=False)
    for name in ("before", "after"):
        console.print(f"[bold]{name}[/bold]", highlight=False)
        console.print(out[name]["text"], markup=False, highlight=False)


def steer_safety(args, steering) -> None:
    if args.model not in (None, steering.CHAT_MODEL):
        raise UsageError(f"--safety steers {steering.CHAT_MODEL}, the model the preference pairs were "
                         f"written for; leave out --model {args.model}")
    lm = load_model(steering.CHAT_MODEL)
    table = steering.safety_with_direction(lm, args.strength)
    if args.json:
        emit(table)
        return
    console.print(f"{table['model']}: rejected->chosen direction at layer {table['layer']}, "
                  f"norm {table['direction_norm']:.2f}", highlight=False)
    for r in table["rows"]:
        c = r["counts"]
        console.print(f"{r['steering']:>8} (strength {r['strength']:+g}): "
                      f"refuses {r['refusal_rate']:.0%} of {c['harmful']} harmful, "
                      f"{r['over_refusal_rate']:.0%} of {c['benign']} benign look-alikes", highlight=False)
