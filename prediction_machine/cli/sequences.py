"""`draw`, `compose`, `sequences-train` and `sequences-report`: pixels and notes in a terminal.

    prediction-machine draw --digit 3 --png three.png
    prediction-machine compose --start "C5 B4 A4" --midi tune.mid
    prediction-machine sequences-train --recipe digits --out /tmp/digits   # rebuilds the shipped model
    prediction-machine sequences-report digits --samples 100      # the numbers in docs/sequences.md

The same decoder, sampling code and generation loop as `generate`; only the tokenizer differs.
"""

from __future__ import annotations

from pathlib import Path

from prediction_machine.cli.output import UsageError, console, emit, finite

SHADES = " .:-=+*#%@"  # grey levels 0..16 in a terminal, lightest first


def register(sub) -> None:
    s = sub.add_parser("draw", help="draw an 8x8 digit pixel by pixel with the tiny pixel model")
    s.add_argument("--digit", default="any", help="0..9, or 'any' (default)")
    s.add_argument("--temperature", type=finite, default=1.0,
                   help="0 = always the likeliest grey (default 1)")
    s.add_argument("--seed", type=int, default=None, help="the same seed draws the same digit")
    s.add_argument("--png", type=Path, default=None, help="also write the drawing to this PNG file")
    s.add_argument("--run", default=None,
                   help="draw with a saved live run (its id) instead of the shipped model")
    s.add_argument("--json", action="store_true", help="print JSON: every pixel's distribution and draw")
    s.set_defaults(func=cmd_draw)

    s = sub.add_parser("compose", help="compose a tune note by note with the tiny chorale model")
    s.add_argument("--start", default="",
                   help="first notes, e.g. 'C5 B4:0.5 A4:2' (name:beats; default 1 beat)")
    s.add_argument("--notes", type=int, default=32, help="at most this many new notes (1..126, default 32)")
    s.add_argument("--temperature", type=finite, default=1.0,
                   help="0 = always the likeliest token (default 1)")
    s.add_argument("--seed", type=int, default=None, help="the same seed composes the same tune")
    s.add_argument("--midi", type=Path, default=None, help="also write the tune to this standard MIDI file")
    s.add_argument("--run", default=None,
                   help="compose with a saved live run (its id) instead of the shipped model")
    s.add_argument("--json", action="store_true", help="print JSON: every step's distribution and draw")
    s.set_defaults(func=cmd_compose)

    from prediction_machine.cli.curriculum import recipe_option

    s = sub.add_parser("sequences-train", help="train the pixel model or the note model from scratch")
    s.add_argument("kind", nargs="?", choices=["digits", "melody"],
                   help="the same as --recipe digits or melody")
    recipe_option(s, "sequences", None)
    s.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the shipped recipe's)")
    s.add_argument("--out", type=Path, default=None, help="save the model in this folder")
    s.add_argument("--json", action="store_true", help="print one JSON line per event")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("sequences-report", help="measure a shipped sequence model against its baselines")
    s.add_argument("kind", choices=["digits", "melody"])
    s.add_argument("--samples", type=int, default=20,
                   help="drawings per digit, or tunes, to generate (default 20; docs/sequences.md uses 100)")
    s.add_argument("--save", action="store_true", help="store the numbers in the shipped model's run.json")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_report)


def _params(temperature: float):
    from prediction_machine.cli.output import check_temperature
    from prediction_machine.inference.sampling import SamplingParams

    try:
        return SamplingParams(temperature=check_temperature(temperature))
    except ValueError as e:
        raise UsageError(str(e)) from None


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def _run_model(kind: str, run: str | None):
    """None (the shipped model), or the saved live run `run` of this kind."""
    if run is None:
        return None
    from prediction_machine.sequences import own

    path = own.find(run, kind)
    if path is None:
        raise UsageError(f"--run: no saved {kind} run called {run!r} in the runs folder")
    return own.load(path)


def cmd_draw(args) -> None:
    from prediction_machine.sequences import digits

    if args.digit == "any":
        digit = None
    elif args.digit.isdigit() and 0 <= int(args.digit) <= 9:
        digit = int(args.digit)
    else:
        raise UsageError(f"--digit must be 0..9 or 'any', got {args.digit!r}")
    out = digits.draw(digit, [], _params(args.temperature), args.seed, _run_model("digits", args.run))
    if args.png:
        _write(args.png, digits.png(out["pixels"]))
    if args.json:
        emit({**out, "png": str(args.png) if args.png else None})
        return
    for r in range(8):
        row = out["pixels"][r * 8 : r * 8 + 8]
        console.print("  " + "".join(SHADES[min(9, p * 10 // 17)] * 2 for p in row))
    c = out["classifier"]
    article = "an" if c["guess"] == 8 else "a"
    console.print(f"asked for: {out['request']}; "
                  f"the classifier sees {article} {c['guess']} ({c['confidence']:.0%} sure)")
    if args.png:
        console.print(f"wrote {args.png}")


def cmd_compose(args) -> None:
    from prediction_machine.sequences import melody, midi

    try:
        start = melody.parse_notes(args.start)
    except ValueError as e:
        raise UsageError(f"--start: {e}") from None
    if not 1 <= args.notes <= melody.MAX_NOTES - 1:
        raise UsageError(f"--notes must be in 1..{melody.MAX_NOTES - 1}, got {args.notes}")
    try:
        out = melody.compose(start, _params(args.temperature), args.seed, args.notes,
                             _run_model("melody", args.run))
    except ValueError as e:
        raise UsageError(f"--start: {e}") from None
    if args.midi:
        _write(args.midi, midi.midi_bytes([(n["pitch"], n["beats"]) for n in out["notes"]]))
    if args.json:
        emit({**out, "midi": str(args.midi) if args.midi else None})
        return
    console.print(" ".join(f"{n['name']}:{n['beats']:g}" for n in out["notes"]))
    s = out["summary"]
    if s["notes"]:
        console.print(f"{s['notes']} notes from {s['lowest']} to {s['highest']}; "
                      f"{s['in_key']:.0%} on the white keys")
    if args.midi:
        console.print(f"wrote {args.midi}")


def cmd_train(args) -> None:
    import torch

    from prediction_machine.sequences import train
    from prediction_machine.training.curriculum import recipes
    from prediction_machine.training.curriculum.loop import fit_warmup

    torch.set_num_threads(1)  # a tiny model: more threads mostly wait for each other
    if args.kind is not None and args.recipe is not None and args.kind != args.recipe:
        raise UsageError(f"give a kind or --recipe, not both ({args.kind} vs {args.recipe})")
    if args.kind is None and args.recipe is None:
        raise UsageError(f"give --recipe NAME: {', '.join(recipes.names('sequences'))}")
    if args.steps is not None and not 1 <= args.steps <= 100_000:
        raise UsageError(f"--steps must be in 1..100000, got {args.steps}")
    cfg = recipes.get(args.recipe or args.kind).with_steps(args.steps).config
    if args.steps is not None:
        cfg = fit_warmup(cfg)  # a shorter run warms up for a tenth of its steps, as the page's runs do
    for name, data in train.train(cfg, args.out):
        if args.json:
            emit({"event": name, **{k: v for k, v in data.items() if k != "lr_schedule"}})
        elif name == "eval":
            console.print(f"step {data['step']:>5}  held-out loss {data['eval_loss']:.3f} nats")
        elif name == "done":
            console.print(f"done: {data['step']} steps, {data['seconds']:.0f} s, {data['flops']:.2e} FLOPs"
                          + (f", saved in {data['folder']}" if data["folder"] else ""))


def cmd_report(args) -> None:
    from prediction_machine.sequences import digits, melody, shipped
    from prediction_machine.training.curriculum.checkpoint import update_record

    if not 1 <= args.samples <= 1000:
        raise UsageError(f"--samples must be in 1..1000, got {args.samples}")
    if args.kind == "digits":
        report = {"nll": digits.nll_report(), "recognition": digits.recognition_table(args.samples)}
    else:
        report = {"nll": melody.nll_report(), "range": melody.range_report(args.samples)}
    if args.save:
        update_record(shipped.shipped(args.kind), measurements=report)
    if args.json:
        emit(report)
        return
    n = report["nll"]
    unit = "pixel" if args.kind == "digits" else "note"
    console.print(f"held-out NLL per {unit} (nats): model {n['model_nll']:.3f}")
    for key, value in n.items():
        if key.endswith("_nll") and key != "model_nll":
            console.print(f"  {key.removesuffix('_nll').replace('_', ' ')}: {value:.3f}")
    if args.kind == "digits":
        r = report["recognition"]
        for row in r["per_digit"]:
            console.print(f"  asked for {row['digit']}: recognized {row['recognized']}/{row['samples']}")
        console.print(f"recognized overall: {r['share']:.1%}; classifier on real held-out digits: "
                      f"{r['classifier_held_out_accuracy']:.1%}")
    else:
        for who in ("generated", "chorales"):
            s = report["range"][who]
            console.print(f"  {who}: {s['lowest']}..{s['highest']} (middle 90%: {s['p5']}..{s['p95']}), "
                          f"{s['in_key']:.1%} on the white keys")
