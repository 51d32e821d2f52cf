"""`prediction-machine diff-models` and `prediction-machine source`: what training changed, and where from.

    prediction-machine diff-models shakespeare-chat shakespeare-dpo      # the weight change per layer
    prediction-machine diff-models smollm2-135m-instruct RUN             # a LoRA run: its B A
    prediction-machine source "Romeo:\nWhat shall I do?" --model shakespeare-base
    prediction-machine source "Gertrude." --question "Who is Hamlet's mother?" --model shakespeare-chat

Both print a table for people, or JSON with --json. A model is a shipped name, a run id or a
checkpoint folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from prediction_machine.limits import MAX_SOURCE_TEXT as MAX_SOURCE_CHARS  # no numpy: the parser imports this


def register(sub) -> None:
    s = sub.add_parser("diff-models",
                       help="relative weight change ||W_B - W_A|| / ||W_A|| of every matrix, layer by layer")
    s.add_argument("before", help="the model training started from (a shipped name, run id or folder)")
    s.add_argument("after", help="the model it became: a checkpoint, or a LoRA run of `before`")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_diff_models)

    s = sub.add_parser("source", help="where did a tiny model learn a text: verbatim matches in its "
                                      "training text, a memorisation score, the nearest chat data")
    s.add_argument("text", help=f"the text the model wrote (at most {MAX_SOURCE_CHARS} characters)")
    s.add_argument("--model", default="shakespeare-base",
                   help="the tiny model that wrote it: a shipped name, run id or folder "
                        "(default %(default)s)")
    s.add_argument("--question", default=None,
                   help="for a chat answer: the question it answered (adds the nearest fine-tuning data)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_source)


def resolve(name: str, option: str, lora: bool = False) -> str:
    """A shipped name, a run id or a folder -> what the library takes, or a one-line usage error."""
    from prediction_machine.cli.output import UsageError
    from prediction_machine.model import models
    from prediction_machine.training.curriculum.runs import RUN_ID, runs_dir

    if name in models.text_models():
        return name
    marks = ("prediction-machine.json",) + (("lora.safetensors",) if lora else ())
    for path in ((runs_dir() / name) if re.match(RUN_ID, name) else None, Path(name).expanduser()):
        if path is not None and any((path / m).exists() for m in marks):
            return str(path.resolve())
    raise UsageError(f"{option}: {name!r} is not a model: give a shipped name "
                     f"({', '.join(models.text_models())}), a run id or a checkpoint folder")


def cmd_diff_models(args) -> None:
    from prediction_machine.cli.output import UsageError, console, emit
    from prediction_machine.training.curriculum import weight_change

    before, after = resolve(args.before, "before"), resolve(args.after, "after", lora=True)
    try:
        change = weight_change.diff_models(before, after)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        emit(change.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"relative weight change, {change.before} -> {change.after}")
    table.add_column("layer", justify="right")
    for m in change.matrices:
        table.add_column(m, justify="right")
    for layer, row in enumerate(change.grid):
        table.add_row(str(layer), *(f"{v:.3f}" for v in row))
    console.print(table)
    others = "  ".join(f"{k} {v:.4f}" for k, v in change.others.items())
    console.print(f"outside the layers: {others}" if others else "")
    big = change.largest
    console.print(f"whole model {change.overall:.4f}; largest: layer {big['layer']} {big['matrix']} "
                  f"{big['change']:.4f}; the top {change.top_cells} cells hold "
                  f"{change.changed_share:.0%} of the change")


def cmd_source(args) -> None:
    from prediction_machine.cli.output import UsageError, console, emit
    from prediction_machine.training.curriculum import nearest_examples

    if not args.text.strip():
        raise UsageError("text: is empty; give the text a model wrote")
    if len(args.text) > MAX_SOURCE_CHARS:
        raise UsageError(f"text: is {len(args.text)} characters; the limit is {MAX_SOURCE_CHARS}")
    model = resolve(args.model, "--model")
    try:
        found = nearest_examples.where_learned(args.text, model, args.question)
    except ValueError as e:
        raise UsageError(f"--model: {e}") from None
    if args.json:
        emit(found)
        return
    mem, base = found["memorisation"], found["baseline"]
    held = f"(held-out real text: {base['score']:.1%})" if base["score"] is not None else ""
    if mem["score"] is None:
        console.print(f"memorisation: not measured, the text has fewer than 8 words {held}")
    else:
        console.print(f"memorisation: {mem['score']:.0%} of {mem['ngrams']} 8-word sequences occur word for "
                      f"word in the training text {held}")
    if not found["matches"]:
        console.print("no verbatim match of 12 characters or more")
    for m in found["matches"]:
        who = f", {m['speaker']}" if m["speaker"] else ""
        console.print(f"\n{m['length']} characters, {m['count']}x in the corpus: {m['source']}, line "
                      f"{m['line']}{who}", markup=False)
        console.print("  " + "\n  ".join(m["lines"]), markup=False, highlight=False)
    if near := found.get("nearest"):
        console.print(f"\nthe question is {near['wording']} (nearest training question "
                      f"{near['nearest_training_question']!r}, {near['similarity']:.2f} by "
                      f"{near['measure']})",
                      markup=False)
        for c in near["conversations"]:
            console.print(f"  {c['similarity']:.2f}  [{c['split']}] {c['user']} -> {c['assistant']}",
                          markup=False)
