"""The canonical "what if" examples, with what each shows on the shipped model, measured.

Each preset names its experiment, its prompt(s), what to look for, and the result the real
functions give on SmolLM2-135M-Instruct, in words ("head L.H raises ' Mary' most") and in
numbers (so tests/test_what_if.py can check the cheap ones still hold). The words are English
data: the page shows its own display words from its content files.

    python -m prediction_machine.experiments.presets --measure    # rerun every preset, rewrite the file

The file is prediction_machine/data/experiment_presets.json; GET /api/experiments/presets serves it.
Measuring runs two head scans and one patch grid: a few minutes on a 2-core laptop.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

EIFFEL = "The Eiffel Tower is in the city of"
COLOSSEUM = "The Colosseum is in the city of"
MARY_JOHN = "When Mary and John went to the store, John gave a drink to"
COUNTING = "One, two, three, four,"
REPETITION = "bird lamp river stone cloud apple. bird lamp river stone cloud"


@dataclass(frozen=True)
class Preset:
    id: str
    experiment: str  # the route and CLI command that runs it: patch, attribute, scan, lens, branch
    title: str
    inputs: dict  # the request's fields: prompt (or source and target), raw, and the experiment's own
    look_for: str  # what to look for, in plain words


PRESETS = (
    Preset("eiffel-colosseum", "patch", "Where does the model keep 'Eiffel Tower'?",
           {"source": EIFFEL, "target": COLOSSEUM, "raw": True},
           "Copy one cell of the Eiffel run into the Colosseum run and see how much of ' Paris' comes "
           "back. In the early layers look at the landmark's own tokens; in the late layers only the last "
           "position matters, because by then the answer has been moved to the place that predicts it."),
    Preset("mary-john-attribute", "attribute", "Who gets the drink? Attribution",
           {"prompt": MARY_JOHN, "raw": True},
           "Which parts add most to the logit of ' Mary'? Look for the few heads that stand out from "
           "the rest, and in which layers they sit."),
    Preset("mary-john-scan", "scan", "Who gets the drink? Switch each head off",
           {"prompt": MARY_JOHN, "raw": True},
           "Switch off each head in turn and see which one costs ' Mary' the most probability. Most heads "
           "change almost nothing: the work is done by a few."),
    Preset("counting-lens", "lens", "Counting: which layer knows the next number?",
           {"prompt": COUNTING, "raw": True, "new_tokens": 4},
           "Follow each generated token through the layers. The next number becomes the top guess only "
           "in the late layers; the commas are decided earlier."),
    Preset("counting-branch", "branch", "Counting: skip a number",
           {"prompt": COUNTING, "raw": True, "new_tokens": 6, "step": 0, "rank": 2},
           "Force the second likeliest token at the first step and compare how the two counts go on: "
           "each later token is predicted from the text so far, so one changed draw changes what follows."),
    Preset("repetition-scan", "scan", "Repetition: the induction heads",
           {"prompt": REPETITION, "raw": True},
           "The words repeat, so the model can copy: after ' cloud' came ' apple' before. Switch each "
           "head off and look for the ones whose loss costs ' apple' most: heads that look back for "
           "the earlier copy and take the word that followed it."),
)


def path() -> Path:
    return Path(str(files("prediction_machine") / "data" / "experiment_presets.json"))


def load() -> list[dict]:
    p = path()
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else []


# ----------------------------------------------------------------------------- measuring


def measure_patch(lm, p: Preset) -> tuple[str, dict]:
    from prediction_machine.experiments import patching

    grid = patching.patch_grid(lm, p.inputs["source"], p.inputs["target"], raw=True).to_json(lm.tokenizer)
    rec, tokens, answer = grid["recovery"], grid["source_tokens"], grid["answer"]["token"]
    T = len(tokens)
    # the first row from which the last position alone brings back at least half of the answer
    row = next(r for r in range(len(rec)) if rec[r][T - 1] is not None and rec[r][T - 1] >= 0.5)
    # before it, the cell elsewhere that brings back most: where the fact sits until then
    early, pos = max(((r, t) for r in range(row) for t in range(T - 1) if rec[r][t] is not None),
                     key=lambda rt: rec[rt[0]][rt[1]])
    numbers = {"answer": answer, "early": {"row": early, "position": pos, "recovery": rec[early][pos]},
               "last": {"row": row, "position": T - 1, "recovery": rec[row][T - 1]}}
    best = tokens[pos]["token"]
    words = (f"before layer {row}, the cell that brings back most of '{answer}' is '{best}' (position {pos}) "
             f"entering layer {early}: {rec[early][pos]:.0%} of the gap between the two runs; "
             f"from the stream entering layer {row} on, the last position alone brings back at least half "
             f"({rec[row][T - 1]:.0%} there)")
    return words, numbers


def measure_attribute(lm, p: Preset) -> tuple[str, dict]:
    from prediction_machine.experiments import attribution

    a = attribution.attribute(lm, p.inputs["prompt"], raw=True).to_json()
    layer, head = max(((lay["layer"], h) for lay in a["layers"] for h in range(len(lay["heads"]))),
                      key=lambda lh: a["layers"][lh[0]]["heads"][lh[1]])
    value = a["layers"][layer]["heads"][head]
    token = a["token"]["token"]
    numbers = {"token": token, "layer": layer, "head": head, "value": value, "logit": a["logit"]}
    return f"head {layer}.{head} raises '{token}' most: +{value:.2f} of its logit {a['logit']:.2f}", numbers


def measure_scan(lm, p: Preset) -> tuple[str, dict]:
    from prediction_machine.experiments import head_scan

    s = head_scan.head_scan(lm, p.inputs["prompt"], raw=True).to_json()
    layer, head = max(((lay, h) for lay in range(s["layers"]) for h in range(s["heads"])),
                      key=lambda lh: s["drop"][lh[0]][lh[1]])
    after, token = s["prob_after"][layer][head], s["target"]["token"]
    numbers = {"token": token, "layer": layer, "head": head, "before": s["base_prob"], "after": after}
    return (f"switching off head {layer}.{head} lowers '{token}' most: from {s['base_prob']:.0%} "
            f"to {after:.0%}"), numbers


def measure_lens(lm, p: Preset) -> tuple[str, dict]:
    from prediction_machine.experiments import generation_lens, readout
    from prediction_machine.inference.sampling import SamplingParams

    ids = readout.prompt_ids(lm, p.inputs["prompt"], raw=True)
    lens = generation_lens.generate_and_read(lm, ids, SamplingParams(0.0), p.inputs["new_tokens"])
    out = lens.to_json(lm.tokenizer)
    steps = [{"token": t["token"], "decided": d, "prob": pr}
             for t, d, pr in zip(out["tokens"], out["decided"], out["model_probs"], strict=True)]
    first = steps[0]
    words = (f"'{first['token']}' becomes the top guess at layer {first['decided']} of {out['layers']} and "
             f"stays ({first['prob']:.0%} at the end); the tokens after it: "
             + ", ".join(f"'{s['token']}' at {s['decided']}" for s in steps[1:]))
    return words, {"layers": out["layers"], "steps": steps}


def measure_branch(lm, p: Preset) -> tuple[str, dict]:
    from prediction_machine.experiments import branching, readout
    from prediction_machine.inference.sampling import SamplingParams

    i = p.inputs
    ids = readout.prompt_ids(lm, i["prompt"], raw=True)
    b = branching.branch(lm, ids, SamplingParams(0.0), i["new_tokens"], i["step"], rank=i["rank"])
    forced = b.branch.steps[i["step"]]
    token = lm.tokenizer.token(forced.id).text
    numbers = {"forced": token, "prob": forced.prob, "original": b.original.text, "branch": b.branch.text}
    return (f"forcing '{token}' ({forced.prob:.0%}) at step {i['step']}: the model goes on "
            f"'{b.branch.text}' where it had written '{b.original.text}'"), numbers


MEASURES = {"patch": measure_patch, "attribute": measure_attribute, "scan": measure_scan,
            "lens": measure_lens, "branch": measure_branch}


def measure_all(lm, only: set[str] | None = None, log=print) -> list[dict]:
    out = []
    for p in PRESETS:
        if only is not None and p.id not in only:
            continue
        words, numbers = MEASURES[p.experiment](lm, p)
        log(f"{p.id}: {words}")
        out.append({"id": p.id, "experiment": p.experiment, "title": p.title, **p.inputs,
                    "look_for": p.look_for, "model": lm.shown_name, "measured": words, "numbers": numbers})
    return out


def main(argv: list[str]) -> int:
    """--measure: every preset; --measure ID ...: only those, keeping the others as stored."""
    if argv[:1] != ["--measure"] or not set(argv[1:]) <= {p.id for p in PRESETS}:
        ids = " ".join(p.id for p in PRESETS)
        print(f"usage: python -m prediction_machine.experiments.presets --measure [{ids}]", file=sys.stderr)
        return 2
    from prediction_machine.jsonsafe import json_numbers
    from prediction_machine.model import models

    lm = models.load(probe_layouts=False)
    only = set(argv[1:]) or {p.id for p in PRESETS}
    fresh = {m["id"]: m for m in json_numbers(measure_all(lm, only), 6)}
    stored = {m["id"]: m for m in load()}
    data = [fresh.get(p.id) or stored[p.id] for p in PRESETS]
    path().write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"measured {len(fresh)} presets; {path()} holds {len(data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
