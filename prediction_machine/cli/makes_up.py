"""`calibrate`: confidence against correctness, the calibration chart of "Why it makes things up".

    prediction-machine calibrate                           # SmolLM2 on the project's general questions
    prediction-machine calibrate --model shakespeare-chat  # the tiny chat model on the plays' facts

Each question is answered greedily; the line shows whether the answer was right (by the set's stated
rule), the probability the model gave the answer's first token, the question and the answer. Then the
reliability bands: for each band of confidence, how many answers fell in it and how many were right.
"""

from __future__ import annotations

import time

from prediction_machine.cli.output import console, emit, load_model


def register(sub) -> None:
    s = sub.add_parser("calibrate",
                       help="answer a fixed question set: first-token probability against right or wrong")
    s.add_argument("--model", default=None,
                   help="a name from `models`, or a checkpoint folder (default: SmolLM2)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> None:
    from prediction_machine.inference import calibration

    lm = load_model(args.model)
    t0 = time.perf_counter()
    out = calibration.cached_calibration(lm, calibration.set_for(lm.name))
    seconds = time.perf_counter() - t0
    if args.json:
        emit({**out, "seconds": round(seconds, 2)})
        return
    say(f"{out['model']} on the {out['set']} questions ({out['count']}); {out['rule']}")
    for p in out["points"]:
        mark = "right" if p["right"] else "wrong"
        say(f"{mark}  {p['confidence']:6.1%}  {p['question']} -> {p['stem']}{p['answer']}".replace("\n", " "))
    say("confidence band   answers  right")
    for b in out["bands"]:
        say(f"{b['low']:4.0%} to {b['high']:4.0%}   {b['count']:7d}  {b['right']:5d}")
    right, wrong = (share(out[f"mean_confidence_{k}"]) for k in ("right", "wrong"))
    say(f"right: {out['right']} of {out['count']}; mean confidence when right {right}, when wrong {wrong}; "
        f"measured in {seconds:.1f} s")


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False)  # model text, printed as it is


def share(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"
