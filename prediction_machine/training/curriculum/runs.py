"""Run folders: where every training run keeps its checkpoint and its record, and how to find them.

One run, one folder under runs_dir(), named after its kind and the time it started:

    ~/.local/share/prediction-machine/runs/
      pretrain-20250101-120000/      model.safetensors  prediction-machine.json  tokenizer.json
                                     optimizer.pt  run.json  (corpus.txt: the learner's own text)
      finetune-20250101-123000/      ... the same files, and the chat template in prediction-machine.json
      pretrain-20250101-123000-2/    a second run started in the same second

run.json is the record a person (or the page) reads: the settings, the loss curves, the
samples, and the cost (tokens, seconds, FLOPs). The CLI and the web page name, list and
summarise runs with the functions below, so a run started from one shows up in the other.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import torch

from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import weights
from prediction_machine.model.models import shipped_checkpoint

RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"  # a run folder's name: no slashes, no leading dot
SHIPPED = ("shakespeare-base", "shakespeare-chat")  # the checkpoints that ship inside the package


def runs_dir() -> Path:
    """$PREDICTION_MACHINE_RUNS, else ~/.local/share/prediction-machine/runs (XDG_DATA_HOME)."""
    root = os.environ.get("PREDICTION_MACHINE_RUNS") or Path(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    ) / "prediction-machine" / "runs"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_folder(kind: str) -> Path:
    """A new, empty folder for a run: runs_dir()/KIND-YYYYmmdd-HHMMSS, with -2, -3, ... for runs
    started in the same second. Creating it claims the name, so two runs never share a folder.

    Under torchrun only the first process (RANK 0) claims a folder and writes the run; the
    others take the plain name without claiming it (they never write into it).
    """
    stamp = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    root, n = runs_dir(), 1
    if os.environ.get("RANK", "0") != "0":
        return root / stamp
    while True:
        folder = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


# ----------------------------------------------------------------------------- writing and reading a run


def write_json(path: Path, data: dict) -> None:
    weights.atomic_write_bytes(path, lambda t: Path(t).write_text(json.dumps(data, indent=1, allow_nan=False)))


def save_run(folder: Path, model, tok: Tokenizer, opt, record: dict, extra: dict | None = None) -> None:
    """Weights (model.safetensors + prediction-machine.json), optimizer state, then the run record.

    Each file is replaced atomically. The optimizer file carries its step, and resume trusts it
    only when it matches the weights' step.
    """
    end_id = tok.special_id("<|end|>")
    meta = {"eos_id": end_id, "training": {k: record[k] for k in ("kind", "step", "tokens", "seconds", "flops")}}
    weights.save_checkpoint(folder, model, tok.json, {**meta, **(extra or {})})
    state = {"step": record["step"], "optimizer": opt.state_dict()}
    weights.atomic_write_bytes(folder / "optimizer.pt", lambda t: torch.save(state, t))
    write_json(folder / "run.json", record)


def load_resume(folder: Path, model, opt) -> tuple[int, bool]:
    """Load weights (and optimizer state when it belongs to the same step). Returns (step, optimizer_restored)."""
    ckpt = weights.read_own_folder(folder)
    model.load_state_dict(ckpt.state)
    step = json.loads((folder / "prediction-machine.json").read_text())["training"]["step"]
    try:
        state = torch.load(folder / "optimizer.pt", weights_only=True)
    except (OSError, RuntimeError, ValueError):
        return step, False
    if state.get("step") != step:
        return step, False
    opt.load_state_dict(state["optimizer"])
    return step, True


def read_run(folder: Path) -> dict | None:
    """A run's record (run.json), or None when the folder holds no run."""
    try:
        return json.loads((Path(folder) / "run.json").read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- finding runs


def find_checkpoint(name: str) -> Path | None:
    """A shipped model's name or a run id -> its checkpoint folder; None when there is none.

    Only names, never paths: "../x" or "/etc" are not run ids and find nothing.
    """
    if name in SHIPPED:
        path = shipped_checkpoint(name)
    elif re.match(RUN_ID, name):
        path = runs_dir() / name
    else:
        return None
    return path if (path / "prediction-machine.json").is_file() else None


def summary(folder: Path) -> dict:
    """What the page's tables need from a run: its kind and status, its cost, its data, its last evaluation."""
    r = read_run(folder) or {}
    evals = (r.get("history") or {}).get("eval") or []
    return {"kind": r.get("kind"), "status": r.get("status"), "step": r.get("step"), "tokens": r.get("tokens"),
            "seconds": r.get("seconds"), "flops": r.get("flops"), "corpus": r.get("corpus"), "data": r.get("data"),
            "last_eval": evals[-1] if evals else None}


def list_runs(limit: int = 200) -> list[dict]:
    """Every checkpoint on disk, summarised: the shipped models first, then this user's runs by name
    (so the newest run of each kind comes first)."""
    out = []
    for name in SHIPPED:
        if (path := find_checkpoint(name)) is not None:
            out.append({"id": name, "shipped": True, **summary(path)})
    for path in sorted(runs_dir().iterdir(), reverse=True):
        if re.match(RUN_ID, path.name) and (path / "prediction-machine.json").is_file():
            out.append({"id": path.name, "shipped": False, **summary(path)})
    return out[:limit]
