"""`record`: save a generation or a short pre-training run as its events, for the page to replay.

    prediction-machine record generation --name capital --seed 7 --max-new-tokens 12 \\
        --chat --prompt "What is the capital of France?"
    prediction-machine record pretraining --name tiny-run --steps 40      # about a minute on a laptop CPU
    prediction-machine record --list

The file goes to $PREDICTION_MACHINE_RECORDINGS (default ~/.local/share/prediction-machine/recordings),
where a running server lists it (GET /api/recordings) and the page replays it, labelled "recorded".
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timezone

from prediction_machine import limits, recording
from prediction_machine.cli.output import UsageError, check_temperature, console, emit, finite, load_model


def register(sub) -> None:
    s = sub.add_parser("record", help="save a generation or a short training run for the page to replay")
    s.add_argument("kind", nargs="?", choices=recording.KINDS, help="what to record")
    s.add_argument("--prompt", help="generation: the prompt")
    s.add_argument("--name", help="the file's name: letters, digits, - and _ (saved as NAME.json)")
    s.add_argument("--title", default=None, help="what the page calls it (default: the prompt or the run)")
    s.add_argument("--list", action="store_true", help="list the recordings the server would offer")
    s.add_argument("--json", action="store_true", help="print JSON instead of a sentence")
    s.add_argument("--model", default=None, help="generation: a name from `models`, or a checkpoint folder")
    s.add_argument("--chat", action="store_true", help="generation: wrap the prompt in the chat template")
    s.add_argument("--max-new-tokens", type=int, default=12, help="generation: tokens (default %(default)s)")
    s.add_argument("--temperature", type=finite, default=limits.TEMPERATURE,
                   help="generation: 0 = greedy (default %(default)s)")
    s.add_argument("--top-k", type=int, default=0, help="generation: top-k (0 = off)")
    s.add_argument("--top-p", type=finite, default=1.0, help="generation: top-p (1 = off)")
    s.add_argument("--min-p", type=finite, default=0.0, help="generation: min-p (0 = off)")
    s.add_argument("--seed", type=int, default=0, help="random seed, so a live run can repeat it (default 0)")
    s.add_argument("--steps", type=int, default=40, help="pretraining: optimizer steps (default %(default)s)")
    s.set_defaults(func=cmd_record)


def cmd_record(args) -> None:
    if args.list:
        found = recording.catalogue()
        if args.json:
            emit({"recordings": found, "folder": str(recording.recordings_dir())})
        else:
            for r in found:
                console.print(f"{r['name']:24} {r['kind']:12} {r['source']:9} {r['title']}", markup=False)
            console.print(f"saved recordings live in {recording.recordings_dir()}", markup=False)
        return
    if args.kind is None or not args.name:
        raise UsageError("record: name what to record (generation or pretraining) and give --name")
    if not re.match(recording.NAME, args.name):
        raise UsageError(f"--name {args.name!r}: use letters, digits, - and _ (at most 64 characters)")
    if args.kind == "generation":
        rec = record_generation(args)
    else:
        rec = record_pretraining(args)
    try:
        path = recording.save(rec, args.name)
    except recording.RecordingError as e:
        raise UsageError(str(e)) from None
    if args.json:
        emit({"path": str(path), "name": args.name, "kind": rec["kind"], "events": len(rec["events"])})
    else:
        console.print(f"saved {len(rec['events'])} events to {path}", markup=False)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- a generation


def record_generation(args) -> dict:
    """The events /api/generate would stream for this request, made by the same code: the web layer's
    GenerationEvents, so a replay draws exactly what a live run draws."""
    from prediction_machine.inference.generation import generate
    from prediction_machine.inference.sampling import SamplingParams
    from prediction_machine.web.routes.inference import GenerationEvents

    if not args.prompt:
        raise UsageError("record generation: give the prompt with --prompt")
    if not 1 <= args.max_new_tokens <= 64:
        raise UsageError(f"--max-new-tokens must be 1 to 64 for a recording, got {args.max_new_tokens}")
    try:
        params = SamplingParams(check_temperature(args.temperature), args.top_k, args.top_p, args.min_p)
    except ValueError as e:
        raise UsageError(str(e)) from None
    lm = load_model(args.model)
    ids = lm.prompt_ids(args.prompt, chat=args.chat)
    if not ids or len(ids) + args.max_new_tokens > lm.config.max_seq_len:
        raise UsageError(f"the prompt must be 1 to {lm.config.max_seq_len - args.max_new_tokens} tokens")
    top_n = 10  # the page asks for ten rows (sections/inference.js)
    events = GenerationEvents(lm, ids, top_n)
    out = [list(events.start())]
    out += [list(events.item(step)) for step in
            generate(lm.decoder, ids, params, args.max_new_tokens, lm.stop_ids, args.seed, top_n)]
    out.append(list(events.end()))
    request = {"prompt": args.prompt, "chat": args.chat, "temperature": args.temperature, "top_k": args.top_k,
               "top_p": args.top_p, "min_p": args.min_p, "seed": args.seed,
               "max_new_tokens": args.max_new_tokens}
    return {"format": recording.FORMAT, "kind": "generation", "title": args.title or args.prompt[:80],
            "recorded_at": _now(), "model": lm.shown_name, "request": request, "events": _json(out)}


# ----------------------------------------------------------------------------- a pre-training run


def record_pretraining(args) -> dict:
    """The events a pre-training job streams to the page (the loop's own events, numbers rounded as the
    server rounds them), from a run in a temporary folder that is deleted afterwards."""
    from prediction_machine.jsonsafe import json_numbers
    from prediction_machine.training.curriculum import pretrain

    if not 1 <= args.steps <= 400:
        raise UsageError(f"--steps must be 1 to 400 for a recording, got {args.steps}")
    every = max(1, round(args.steps / 12))  # as the page asks: about a dozen evaluations and samples
    cfg = pretrain.live_config(steps=args.steps, eval_every=every, sample_every=every, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="pm-record-") as folder:
        out = [[name, json_numbers(data, 8)] for name, data in pretrain.pretrain(cfg, folder)]
    for _, data in out:
        data.pop("folder", None)  # a temporary folder, gone now: a replay offers no checkpoint to open
    if not out or out[-1][0] != "done":
        out.append(["done", {"status": "finished"}])
    request = {"steps": args.steps, "eval_every": every, "sample_every": every, "seed": args.seed}
    return {"format": recording.FORMAT, "kind": "pretraining",
            "title": args.title or f"pre-training, {args.steps} steps", "recorded_at": _now(),
            "model": "a new tiny model", "request": request, "events": _json(out)}


def _json(x):
    """Tuples and numpy numbers as plain JSON values (what the server's stream sends)."""
    import json

    return json.loads(json.dumps(x, default=float))
