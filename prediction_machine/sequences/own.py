"""The learner's own pixel and note models: the live runs of "Train them yourself", beside the shipped ones.

A live run saves into a run folder like every other training run (training/curriculum/runs.py):
runs_dir()/digits-YYYYmmdd-HHMMSS/ (or melody-...), written by the one checkpoint module, with an
`owner` file when the page started it, so the runs quota removes it with its owner's other runs.
Its run.json's `kind` says which figure can use it: the pixel model draws, the note model composes.

The comparison measures both models with the same functions: the held-out loss the training loop
reports (sequences/nll.py), and, for digits, the same judge (classifier.py) on one drawing of each
digit per model, drawn with the same seeds.

    find("digits-20260101-120000", "digits") -> its folder     load(folder) -> the Transformer, once
    compare("digits", my_model, seed=0)      -> {"shipped": {...}, "mine": {...}}
"""

from __future__ import annotations

import copy
import re
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.transformer import Transformer
from prediction_machine.sequences import digits, melody, shipped
from prediction_machine.sequences import note_tokens as nt
from prediction_machine.sequences.nll import mean_nll
from prediction_machine.training.curriculum import runs
from prediction_machine.training.curriculum.checkpoint import files, read_model

KINDS = shipped.KINDS
CACHED = 8  # learners' models kept loaded (a few hundred kB each); the least recently used goes first
TUNES = 2  # tunes per model in the comparison; digits draw one of each, 0..9


# ----------------------------------------------------------------------------- finding and loading


def is_run(path: Path, kind: str | None = None) -> dict | None:
    """A run folder's record when it holds a saved sequence model (of `kind`, if given), else None."""
    if not path.name.startswith(tuple(f"{k}-" for k in KINDS)):  # the names new_run_folder gives them
        return None
    record = runs.read_run(path)
    if not record or record.get("kind") not in KINDS or "model" not in record:
        return None
    return record if kind is None or record["kind"] == kind else None


def find(name: str, kind: str) -> Path | None:
    """A run id -> its folder when it holds a saved `kind` model; never a path ("../x" finds nothing)."""
    if not re.match(runs.RUN_ID, name):
        return None
    path = runs.runs_dir() / name
    return path if path.is_dir() and is_run(path, kind) else None


def list_runs(viewer: str | None = None) -> list[dict]:
    """The saved sequence runs, newest first; with a `viewer`, only the ones it owns."""
    out = []
    for path in sorted(runs.runs_dir().iterdir(), reverse=True):
        if viewer is not None and runs.owner(path) != viewer:
            continue
        if (r := is_run(path)) is not None:
            evals = (r.get("history") or {}).get("eval") or []
            out.append({"id": path.name, "kind": r["kind"], "status": r.get("status"), "step": r.get("step"),
                        "seconds": r.get("seconds"), "eval_loss": evals[-1]["eval_loss"] if evals else None})
    return out


_cache: OrderedDict[tuple[str, str], Transformer] = OrderedDict()
_lock = threading.Lock()


def load(folder: Path) -> Transformer:
    """The run's current checkpoint, loaded once (a resumed or newer checkpoint is a new key)."""
    key = (str(folder), files(folder).name)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = read_model(folder)
    with _lock:
        _cache[key] = model
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return model


# ----------------------------------------------------------------------------- side by side


def measure(kind: str, model: Transformer, seed: int) -> dict:
    """One model's numbers: the held-out loss (nats per token, as the training loop reports it), and
    a few samples: one drawing of each digit with the judge's verdict, or TUNES tunes."""
    task = digits if kind == "digits" else melody
    out = {"eval_loss": mean_nll(model, task.held_out_rows())}
    if kind == "digits":
        images = digits.sample_images(model, list(range(10)), seed)
        drawings = [{"digit": d, "pixels": img, **digits.classify(img)} for d, img in enumerate(images)]
        out |= {"drawings": drawings, "recognized": sum(x["guess"] == x["digit"] for x in drawings)}
    else:
        params = SamplingParams(temperature=1.0)
        tunes = [melody.sample_tune(model, [], params, seed * 1000 + i, 24) for i in range(TUNES)]
        out |= {"tunes": [[{"pitch": p, "name": nt.note_name(p), "beats": q} for p, q in t] for t in tunes],
                "summary": melody.pitch_summary(tunes)}
    return out


@lru_cache(maxsize=16)
def measure_shipped(kind: str, seed: int) -> dict:
    """The shipped model's side: the same for every learner who compares with this seed, so measured once."""
    return measure(kind, shipped.load(kind), seed)


def compare(kind: str, mine: Transformer, seed: int = 0) -> dict:
    """The shipped model and the learner's, measured the same way with the same seeds."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return {"kind": kind, "seed": seed, "shipped": copy.deepcopy(measure_shipped(kind, seed)),
            "mine": measure(kind, mine, seed)}
