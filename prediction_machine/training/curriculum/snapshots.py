"""Snapshots: what the inside of a model looks like at steps along its pre-training.

The loss curve shows that a model learns; snapshots show what it builds. At a fixed cadence
(SNAPSHOTS_PER_RUN evenly spaced steps, plus step 0 and the last) the loop hands the model to
`Recorder.take`, which measures it on two fixed probes and keeps:

    attention   every head's pattern on a short probe text           L x H x (row q: q+1 keys)
    lens        the logit lens at the probe text's last position     L x top LENS_TOP tokens
    induction   each head's induction score (induction.py)            L x H
    previous    each head's previous-token score                      L x H

The probe text ends halfway through a repeated word ("the king, the ki"): a model that copies
from earlier in its context guesses the rest of "king" there, and the lens shows in which layer.

The snapshots of a run live in its folder (snapshots.json, rewritten atomically after each one),
so they are deleted with the run; a resumed run keeps those up to the step it resumes from.
Size: 4 layers x 4 heads x 136 attention weights + 32 scores, about 12 kB a snapshot, under
a megabyte for a run.

Shape letters: L layers, H heads, T probe tokens, V vocabulary.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import torch

from prediction_machine import limits
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import weights
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import induction

SNAPSHOTS_PER_RUN = 40  # the cadence: every steps // 40 steps (at least every step), and step 0 and the last
PROBE_TEXT = "the king, the ki"  # short, and it repeats: an induction head has something to copy
MAX_PROBE_TOKENS = 16  # a character-level tokenizer makes 16 tokens of PROBE_TEXT; BPE fewer
LENS_TOP = 3  # tokens shown per layer at the last position
DIGITS = 3  # attention weights and scores are kept to 3 decimals: the page cannot show more
FILE = "snapshots.json"
MAX_SHOWN = limits.MAX_SNAPSHOTS_SHOWN  # a run extended many times is thinned evenly to this (limits.py)
CURVE_POINTS = 300  # the loss curve drawn above the scrubber: at most this many [step, loss] points


def every(steps: int) -> int:
    """Steps between snapshots for a run of `steps` steps. Example: 1200 -> 30, 600 -> 15, 20 -> 1."""
    return max(1, steps // SNAPSHOTS_PER_RUN)


@dataclass
class Probe:
    """The fixed inputs every snapshot of a run is measured on."""

    ids: list[int]  # the probe text's token ids
    tokens: list[str]  # ... and each one as text, for the page's axis labels
    repeated: torch.Tensor  # (B, 2n) random tokens repeated twice, for the head scores

    def describe(self) -> dict:
        return {"text": PROBE_TEXT, "tokens": self.tokens, "repeat_half": self.repeated.shape[1] // 2,
                "repeat_probes": self.repeated.shape[0]}


def make_probe(tok: Tokenizer, train_ids: torch.Tensor) -> Probe:
    """The probe text, and random repeated tokens drawn from the tokens that occur in the training text.

    Only tokens the model has seen are drawn: a byte that never occurs in the corpus keeps its random
    initial vector, and a head could not be blamed for failing to copy it.
    """
    ids = tok.encode_ids(PROBE_TEXT)[:MAX_PROBE_TOKENS]
    seen = torch.nonzero(torch.bincount(train_ids, minlength=tok.vocab_size) > 0).flatten()  # (S,)
    repeated = induction.repeated_tokens(seen)  # (B, 2n)
    return Probe(ids, [tok.token(i).text for i in ids], repeated)


def _rounded(x: torch.Tensor) -> list:
    return torch.round(x.double(), decimals=DIGITS).tolist()  # double: 0.623, not 0.6230000257


@torch.no_grad()
def measure(model: Transformer, tok: Tokenizer, probe: Probe) -> dict:
    """One snapshot's measurements of `model` on `probe` (the keys in the module docstring)."""
    was_training = model.training
    model.eval()
    try:
        idx = torch.tensor([probe.ids])  # (1, T)
        _, rec = model(idx, record=True)
        att = torch.stack([a[0] for a in rec.attention])  # (L, H, T, T)
        last = torch.stack([r[0, -1] for r in rec.residuals])  # (L, D) the stream at the last position
        probs = torch.softmax(model.unembed(last).float(), dim=-1)  # (L, V)
        top = probs.topk(LENS_TOP, dim=-1)  # (L, k)
        ind, prev = induction.head_scores(model, probe.repeated)  # (L, H) each
    finally:
        model.train(was_training)
    T = att.shape[-1]
    # tokens as the page shows them: a lone byte of a longer character reads <0xC3>, not "\ufffd"
    return {
        "attention": [[[_rounded(head[q, : q + 1]) for q in range(T)] for head in layer] for layer in att],
        "lens": [{"layer": layer, "tokens": [tok.token(i).text for i in top.indices[layer].tolist()],
                  "probs": _rounded(top.values[layer])} for layer in range(probs.shape[0])],
        "induction": _rounded(ind),
        "previous": _rounded(prev),
    }


# ----------------------------------------------------------------------------- a run's snapshots


class Recorder:
    """Takes a run's snapshots and keeps them in its folder; `take` is what the training loop calls."""

    def __init__(self, folder: Path | None, model: Transformer, tok: Tokenizer, train_ids: torch.Tensor,
                 steps: int, resumed_at: int = 0):
        self.folder, self.model, self.tok = folder, model, tok
        self.probe = make_probe(tok, train_ids)
        self.every = every(steps)
        old = read(folder) if folder is not None and resumed_at else None
        self.snapshots = [s for s in (old or {}).get("snapshots", []) if s["step"] <= resumed_at]

    def take(self, step: int, loss: float | None) -> dict:
        """Measure the model now and keep it; returns the `snapshot` event (with the probe's tokens)."""
        snap = {"step": step, "loss": None if loss is None else round(loss, 4),
                **measure(self.model, self.tok, self.probe)}
        self.snapshots.append(snap)
        if self.folder is not None:
            body = json.dumps(self.document(), separators=(",", ":"), allow_nan=False)
            weights.atomic_write_bytes(Path(self.folder) / FILE, lambda t: Path(t).write_text(body))
        return {**snap, "tokens": self.probe.tokens, "threshold": induction.FORMED_AT}  # the page's event

    def document(self) -> dict:
        return document(self.probe.describe(), self.every, self.snapshots)


def document(probe: dict, cadence: int, snapshots: list[dict]) -> dict:
    """snapshots.json: the probe, the cadence, the formation step (or None) and the snapshots."""
    return {"probe": probe, "every": cadence, "threshold": induction.FORMED_AT,
            "formed": induction.formation(snapshots), "snapshots": snapshots}


def read(folder: Path) -> dict | None:
    """A run's snapshots.json, or None when it has none (a run from before snapshots, or fine-tuning)."""
    try:
        return json.loads((Path(folder) / FILE).read_text())
    except (OSError, ValueError):
        return None


def table(doc: dict) -> list[dict]:
    """One row per snapshot for the CLI: step, loss, the best induction and previous-token heads.

    Example row: {"step": 300, "loss": 2.41, "induction": 0.62, "induction_head": "L1H3",
    "previous": 0.81, "previous_head": "L0H2"}.
    """
    rows = []
    for s in doc["snapshots"]:
        row = {"step": s["step"], "loss": s["loss"]}
        for key in ("induction", "previous"):
            score, layer, head = max((v, li, hi) for li, r in enumerate(s[key]) for hi, v in enumerate(r))
            row[key], row[f"{key}_head"] = score, f"L{layer}H{head}"
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- finding a run's snapshots


def shipped_folder() -> Path:
    """Recorded runs that ship with the package, one JSON file each (see docs/curriculum.md)."""
    return Path(str(files("prediction_machine") / "data" / "snapshots"))


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_folder().glob("*.json"))


def thinned(doc: dict, most: int = MAX_SHOWN) -> dict:
    """At most `most` snapshots, evenly spaced, the first and the last always kept.

    Example: 5 snapshots, most 3 -> the 1st, the 3rd and the 5th.
    """
    snaps = doc["snapshots"]
    if len(snaps) <= most:
        return doc
    keep = sorted({round(i * (len(snaps) - 1) / (most - 1)) for i in range(most)})
    return {**doc, "snapshots": [snaps[i] for i in keep]}


def loss_curve(steps: list[int], losses: list[float], most: int = CURVE_POINTS) -> list[list[float]]:
    """A run's loss history as at most `most` [step, loss] points, evenly spaced, the last one kept.

    Example: steps 1..1200, most 300 -> steps 1, 5, 9, ..., 1197 and 1200.
    """
    every_n = max(1, -(-len(steps) // most))  # ceiling division
    keep = list(range(0, len(steps), every_n))
    if steps and keep[-1] != len(steps) - 1:
        keep[-1] = len(steps) - 1
    return [[steps[i], losses[i]] for i in keep]


def of_folder(folder: Path) -> dict | None:
    """A run folder's snapshots (thinned) with its loss curve from run.json; None when it took none."""
    from prediction_machine.training.curriculum.runs import read_run

    doc = read(folder)
    if doc is None:
        return None
    history = (read_run(folder) or {}).get("history") or {}
    return {**thinned(doc), "curve": loss_curve(history.get("step", []), history.get("loss", []))}


def run_snapshots(run: str | Path) -> dict:
    """A run's snapshots: a shipped record's name, a run id (under runs_dir()) or a run folder.

    Returns snapshots.json's content (see `document`), thinned to MAX_SHOWN, with the run's loss
    curve; a ValueError names what was looked for when there are none.
    """
    from prediction_machine.training.curriculum.runs import RUN_ID, runs_dir

    name = str(run)
    if name in shipped_names():
        return thinned(json.loads((shipped_folder() / f"{name}.json").read_text()))
    folder = Path(run)
    if not folder.is_dir() and re.match(RUN_ID, name):
        folder = runs_dir() / name
    doc = of_folder(folder)
    if doc is None:
        raise ValueError(f"{name!r} holds no snapshots: only pre-training runs take them; "
                         f"the shipped records are {', '.join(shipped_names()) or 'none'}")
    return doc
