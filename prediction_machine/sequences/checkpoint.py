"""Saving and loading the two small sequence models: weights, their config, and their record.

A folder holds `model.safetensors` (the decoder), `recipe.json` (the model's config, the
training recipe, what the run cost, and what was measured afterwards), and for digits also
`classifier.safetensors`. The shipped folders are prediction_machine/data/digits-model/ and
prediction_machine/data/melody-model/.
"""

from __future__ import annotations

import json
import threading
from importlib.resources import files
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from prediction_machine.config import ModelConfig
from prediction_machine.model import weights
from prediction_machine.model.models import build_transformer
from prediction_machine.model.transformer import Transformer

KINDS = ("digits", "melody")


def shipped(kind: str) -> Path:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return Path(str(files("prediction_machine") / "data" / f"{kind}-model"))


def save(folder: Path, model: Transformer, record: dict, extra: dict[str, torch.Tensor] | None = None) -> None:
    """Weights first, the record last: a folder with recipe.json is complete."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    weights.atomic_write_bytes(folder / "model.safetensors", lambda t: save_file(state, t))
    for name, tensors in (extra or {}).items():
        weights.atomic_write_bytes(folder / f"{name}.safetensors", lambda t, s=tensors: save_file(s, t))
    record = {**record, "config": model.cfg.to_dict()}
    weights.atomic_write_bytes(folder / "recipe.json", lambda t: Path(t).write_text(json.dumps(record, indent=1)))


def read_record(folder: Path) -> dict:
    return json.loads((Path(folder) / "recipe.json").read_text())


def update_record(folder: Path, **fields) -> dict:
    """Add measurements to a saved record (the weights are untouched)."""
    record = {**read_record(folder), **fields}
    weights.atomic_write_bytes(Path(folder) / "recipe.json", lambda t: Path(t).write_text(json.dumps(record, indent=1)))
    return record


def read_model(folder: Path) -> Transformer:
    folder = Path(folder)
    cfg = ModelConfig.from_dict(read_record(folder)["config"])
    ckpt = weights.Checkpoint(cfg, load_file(str(folder / "model.safetensors")), "", None, None, None, str(folder))
    return build_transformer(ckpt)  # frozen, in eval mode


_cache: dict[str, Transformer] = {}
_lock = threading.Lock()


def load(kind: str) -> Transformer:
    """The shipped model of this kind, loaded once per process (a few hundred kB, milliseconds)."""
    with _lock:
        if kind not in _cache:
            _cache[kind] = read_model(shipped(kind))
        return _cache[kind]
