"""Run folders: where every training run keeps its checkpoint and its record, and how to find them.

One run, one folder under runs_dir(), named after its kind and the time it started:

    ~/.local/share/prediction-machine/runs/
      pretrain-20250101-120000/      model.safetensors  prediction-machine.json  tokenizer.json
                                     optimizer.pt  run.json  (corpus.txt: the learner's own text)
                                     (links into current/, one consistent checkpoint: checkpoint.py)
      finetune-20250101-123000/      ... the same files, and the chat template in prediction-machine.json
      pretrain-20250101-123000-2/    a second run started in the same second

A run started from the web page also holds `owner`: who started it. In classroom mode a
student sees and resumes only their own runs (and the shipped ones), and `prune` keeps each
owner's runs under a size quota and an age limit, oldest first.

run.json is the record a person (or the page) reads: the settings, the loss curves, the
samples, and the cost (tokens, seconds, FLOPs). The CLI and the web page name, list and
summarise runs with the functions below, so a run started from one shows up in the other.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum.checkpoint import read_record

RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"  # a run folder's name: no slashes, no leading dot
SHIPPED = ("shakespeare-base", "shakespeare-chat")  # the checkpoints that ship inside the package
OWNER_FILE = "owner"  # who started a run from the web page (absent for runs of the CLI)
EMPTY_GRACE_S = 60.0  # a folder with no checkpoint this old is a failed or killed run, not one starting


def runs_dir() -> Path:
    """$PREDICTION_MACHINE_RUNS, else ~/.local/share/prediction-machine/runs (XDG_DATA_HOME)."""
    root = os.environ.get("PREDICTION_MACHINE_RUNS") or Path(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    ) / "prediction-machine" / "runs"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_run_folder(kind: str, owner: str | None = None) -> Path:
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
        except FileExistsError:
            n += 1
            continue
        if owner is not None:
            (folder / OWNER_FILE).write_text(owner)
        return folder


# ----------------------------------------------------------------------------- reading a run


def read_run(folder: Path) -> dict | None:
    """A run's record (run.json of its current checkpoint), or None when the folder holds no run.

    Records are written by checkpoint.py alone, as part of a checkpoint."""
    return read_record(Path(folder))


def owner(folder: Path) -> str | None:
    try:
        return (Path(folder) / OWNER_FILE).read_text().strip() or None
    except OSError:
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
    """What the page's tables need from a run: its kind and status, its cost, its data, its first and
    last eval, and `base`: the run or shipped model it started from, as its run.json recorded it (so a
    comparison or the cost table pairs a run with its own start, after a reload as before it)."""
    r = read_run(folder) or {}
    evals = (r.get("history") or {}).get("eval") or []
    return {"kind": r.get("kind"), "status": r.get("status"), "step": r.get("step"),
            "tokens": r.get("tokens"), "seconds": r.get("seconds"), "flops": r.get("flops"),
            "corpus": r.get("corpus"), "data": r.get("data"), "base": recorded_base(r),
            "first_eval": evals[0] if evals else None, "last_eval": evals[-1] if evals else None}


def recorded_base(record: dict) -> str | None:
    """The name of the run a record says it started from: a shipped name or a run id, never a path
    (a run started from a folder elsewhere, or before bases were recorded, has None)."""
    base = record.get("base")
    return base if isinstance(base, str) and re.match(RUN_ID, base) else None


def base_of(name: str) -> str | None:
    """The recorded base of a shipped model or run, by name (None when it has none)."""
    path = find_checkpoint(name)
    return recorded_base(read_run(path) or {}) if path is not None else None


def list_runs(limit: int = 200, viewer: str | None = None) -> list[dict]:
    """Every checkpoint on disk, summarised: the shipped models first, then the runs by name
    (so the newest run of each kind comes first). With a `viewer`, only the runs it owns."""
    out = []
    for name in SHIPPED:
        if (path := find_checkpoint(name)) is not None:
            out.append({"id": name, "shipped": True, **summary(path)})
    for path in sorted(runs_dir().iterdir(), reverse=True):
        if re.match(RUN_ID, path.name) and (path / "prediction-machine.json").is_file():
            if viewer is None or owner(path) == viewer:
                out.append({"id": path.name, "shipped": False, **summary(path)})
    return out[:limit]


# ----------------------------------------------------------------------------- the disk quota


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in a folder (links count nothing: they point at files counted once)."""
    total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            st = os.lstat(os.path.join(base, name))
            total += 0 if os.path.islink(os.path.join(base, name)) else st.st_size
    return total


def prune(who: str | set[str], max_bytes: float, max_age_s: float, keep: set[str] | frozenset = frozenset()
          ) -> list[str]:
    """Remove `who`'s runs that never saved a checkpoint (once EMPTY_GRACE_S old), then its runs older
    than `max_age_s`, then its oldest until the rest fit in `max_bytes`.

    Only runs whose owner file names `who` (or one of a set of owners, counted together): never
    the shipped models, never a CLI run, never another client's run, never a folder in `keep` (a
    job still writing it). Returns the ids removed.
    """
    now = time.time()
    owners = {who} if isinstance(who, str) else set(who)
    mine, removed = [], []
    for path in runs_dir().iterdir():
        if path.is_dir() and not path.is_symlink() and path.name not in keep and owner(path) in owners:
            mtime = path.stat().st_mtime
            saved = read_run(path) is not None or (path / "prediction-machine.json").is_file()
            if not saved and now - mtime > EMPTY_GRACE_S:
                # never checkpointed: its job failed, or the server was killed before the first save
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
                continue
            mine.append((mtime, path, folder_bytes(path)))
    mine.sort(key=lambda t: t[0])  # oldest first
    total = sum(size for _, _, size in mine)
    for mtime, path, size in mine:
        if now - mtime <= max_age_s and total <= max_bytes:
            break
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        removed.append(path.name)
    return removed
