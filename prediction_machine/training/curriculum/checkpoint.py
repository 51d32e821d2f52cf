"""The one checkpoint module: weights, optimizer, tokenizer and run.json agree, even after a crash.

Every checkpoint is written into a new folder of its own, and one rename makes it the current one:

    pretrain-20250101-120000/
      current -> ckpt-000100-3fa2c1          a symbolic link, replaced atomically (rename)
      ckpt-000100-3fa2c1/                    model.safetensors prediction-machine.json tokenizer.json
                                             optimizer.pt run.json (all from step 100)
      model.safetensors -> current/model.safetensors     the run folder's files point through
      run.json -> current/run.json                       `current`, so every reader (models.load,
      ...                                                the CLI, the page) sees one step's set

The writer fills `.ckpt-....tmp/`, renames it to `ckpt-...`, then swaps the `current` link.
Killed at any moment (kill -9), the folder still shows either the previous complete set or
the new one, never a mix; what was half-written is a leftover `.tmp` that `clean_leftovers`
removes at the next start. Older checkpoint folders are deleted once the new one is current.

Every trainer saves through this module: pretrain, finetune and dpo a whole checkpoint (save_run),
lora its adapters (save_adapters), the sequence models their decoder (save_model). Each run's
record is run.json, in the schema of loop.py. The shipped folders under prediction_machine/data/
hold plain files (a checkpoint copied without its optimizer); every reader here takes both.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from prediction_machine.config import ModelConfig
from prediction_machine.model import weights
from prediction_machine.model.models import build_transformer

CURRENT = "current"
RECORD = "run.json"  # every run's record, whatever trained it
PREFIX = "ckpt-"
MARKER = "prediction-machine.json"  # linked last: a folder with it holds a complete checkpoint


def commit(folder: Path, step: int, write: Callable[[Path], None]) -> Path:
    """Write one checkpoint: `write(tmp)` fills a new folder, which then becomes current at once."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{PREFIX}{step:06d}-{secrets.token_hex(3)}"
    tmp = folder / f".{tag}.tmp"
    tmp.mkdir()
    write(tmp)
    final = folder / tag
    os.rename(tmp, final)  # complete, but not yet current
    _link(folder / CURRENT, tag)  # the one atomic switch
    names = sorted((p.name for p in final.iterdir()), key=lambda n: n == MARKER)  # the marker last
    for name in names:
        target = Path(CURRENT) / name
        here = folder / name
        if not (here.is_symlink() and Path(os.readlink(here)) == target):
            _link(here, str(target))
    for old in folder.glob(PREFIX + "*"):
        if old.name != tag and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return final


def _link(path: Path, target: str) -> None:
    """Point `path` at `target`, replacing whatever is there in one rename."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, path)


def files(folder: Path) -> Path:
    """Where a run's checkpoint files are read from: its current checkpoint, or (older runs) the folder."""
    folder = Path(folder)
    current = folder / CURRENT
    return current.resolve() if current.is_symlink() and current.resolve().is_dir() else folder


def clean_leftovers(root: Path, min_age_s: float = 600.0) -> int:
    """Remove what interrupted writes left in every run folder under `root`: `*.tmp` files and
    folders, and checkpoint folders that are not current. Returns how many were removed.

    Only leftovers older than `min_age_s`: a CLI run training beside the server right now
    may be writing its next checkpoint.
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    return sum(clean_run(p, min_age_s) for p in root.iterdir() if p.is_dir() and not p.is_symlink())


def clean_run(folder: Path, min_age_s: float = 0.0) -> int:
    """The same for one run folder (at resume: nobody else writes it)."""
    keep = files(folder).name
    removed, now = 0, time.time()
    for item in list(Path(folder).iterdir()):
        stale = item.name.endswith(".tmp") or (item.name.startswith(PREFIX) and item.name != keep)
        if stale and now - item.lstat().st_mtime >= min_age_s:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed += 1
    return removed


# ----------------------------------------------------------------------------- a training run


def save_run(folder: Path, model, tok, opt, record: dict, extra: dict | None = None) -> Path:
    """Weights (model.safetensors + prediction-machine.json + tokenizer.json), optimizer state and
    the run record, all from the same step, as one checkpoint."""
    end_id = tok.special_id("<|end|>")
    totals = {k: record[k] for k in ("kind", "step", "tokens", "seconds", "flops")}
    meta = {"eos_id": end_id, "training": totals}
    state = {"step": record["step"], "optimizer": opt.state_dict()}

    def write(tmp: Path) -> None:
        weights.save_checkpoint(tmp, model, tok.json, {**meta, **(extra or {})})
        torch.save(state, tmp / "optimizer.pt")
        write_record(tmp, record)

    return commit(folder, record["step"], write)


def save_adapters(folder: Path, tensors: dict, metadata: dict, record: dict) -> Path:
    """LoRA: the adapters (lora.safetensors) and the run record, as one checkpoint."""

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / "lora.safetensors"), metadata=metadata)
        write_record(tmp, record)

    return commit(folder, record.get("step", 0), write)


def save_model(folder: Path, model, record: dict, extra: dict[str, dict[str, torch.Tensor]] | None = None
               ) -> Path:
    """A model without a tokenizer (the sequence models): model.safetensors, any `extra` tensor files
    (digits: classifier.safetensors) and run.json, whose `model` field holds the model's config."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}

    def write(tmp: Path) -> None:
        save_file(state, str(tmp / "model.safetensors"))
        for name, tensors in (extra or {}).items():
            save_file(tensors, str(tmp / f"{name}.safetensors"))
        write_record(tmp, {**record, "model": model.cfg.to_dict()})

    return commit(folder, record["step"], write)


def read_model(folder: Path):
    """A model saved by save_model, frozen and in eval mode."""
    where = files(folder)
    cfg = ModelConfig.from_dict(json.loads((where / RECORD).read_text())["model"])
    state = load_file(str(where / "model.safetensors"))
    ckpt = weights.Checkpoint(cfg, state, "", None, None, None, str(where))
    return build_transformer(ckpt)


# ----------------------------------------------------------------------------- the record


def write_record(folder: Path, record: dict) -> None:
    """run.json, written atomically (a reader sees the old record or the new one, never half)."""
    text = json.dumps(record, indent=1, allow_nan=False)
    weights.atomic_write_bytes(Path(folder) / RECORD, lambda t: Path(t).write_text(text))


def read_record(folder: Path) -> dict | None:
    """The current checkpoint's run.json, or None when the folder holds no run."""
    try:
        return upgrade(json.loads((files(folder) / RECORD).read_text()))
    except (OSError, ValueError):
        return None


def upgrade(record: dict) -> dict:
    """A record written before the one schema, in it: the held-out loss was `val_loss` in pre-training
    runs and `held_out_nll` in sequence runs.

    Example: an eval entry {"step": 5, "val_loss": 3.1} becomes {"step": 5, "eval_loss": 3.1}.
    """
    for e in (record.get("history") or {}).get("eval") or []:
        for old in ("val_loss", "held_out_nll"):
            if old in e:
                e["eval_loss"] = e.pop(old)
    return record


def update_record(folder: Path, **fields) -> dict:
    """Add measurements to a saved run's record (the weights are untouched)."""
    where = files(folder)
    record = {**json.loads((where / RECORD).read_text()), **fields}
    write_record(where, record)
    return record


def load_resume(folder: Path, model, opt) -> tuple[dict, int, bool]:
    """Load the current checkpoint into `model` (and `opt` when its state is from the same step).

    Returns (the run record, its step, optimizer restored). All three files come from one
    checkpoint folder, so their steps agree; older runs (plain files) are checked the same way.
    """
    where = files(folder)
    record = upgrade(json.loads((where / RECORD).read_text()))
    ckpt = weights.read_own_folder(where)
    model.load_state_dict(ckpt.state)
    step = json.loads((where / MARKER).read_text())["training"]["step"]
    if step != record["step"]:
        raise ValueError(f"{folder}: the weights are from step {step} but run.json from step "
                         f"{record['step']}")
    try:
        state = torch.load(where / "optimizer.pt", weights_only=True)
    except (OSError, RuntimeError, ValueError):
        return record, step, False
    if state.get("step") != step:
        return record, step, False
    opt.load_state_dict(state["optimizer"])
    return record, step, True
