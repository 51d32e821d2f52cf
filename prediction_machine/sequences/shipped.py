"""The two shipped sequence models, found by kind and loaded once per process.

prediction_machine/data/digits-model/ and prediction_machine/data/melody-model/ hold what
`prediction-machine sequences-train --recipe digits` (or melody) wrote: model.safetensors,
run.json (the one record schema, plus the measurements `sequences-report --save` adds) and,
for digits, classifier.safetensors. Saving and reading go through the one checkpoint module,
training/curriculum/checkpoint.py.
"""

from __future__ import annotations

import threading
from importlib.resources import files
from pathlib import Path

from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum.checkpoint import read_model

KINDS = ("digits", "melody")


def shipped(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return Path(str(files("prediction_machine") / "data" / f"{kind}-model"))


_cache: dict[str, Transformer] = {}
_lock = threading.Lock()


def load(kind: str) -> Transformer:
    """The shipped model of this kind, loaded once per process (a few hundred kB, milliseconds)."""
    with _lock:
        if kind not in _cache:
            _cache[kind] = read_model(shipped(kind))
        return _cache[kind]
