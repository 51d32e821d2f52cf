"""Recorded sessions: a generation or a training run saved as its events, so the page can replay it.

A classroom's fallback for a server that cannot keep up: the teacher replays a session recorded
earlier, and every figure is drawn from the same events a live run sends. The page labels it
"recorded" in plain view; it is never passed off as live.

One recording is one JSON file (at most limits.MAX_RECORDING_BYTES):

    {"format": 1, "kind": "generation", "title": "...", "recorded_at": "2026-12-07T10:00:00Z",
     "model": "smollm2-135m-instruct", "request": {...the settings it ran with...},
     "events": [["start", {...}], ["step", {...}], ..., ["done", {...}]]}

`events` are exactly what /api/generate (kind "generation") or a training job's stream (kind
"pretraining") sends, in order. Recordings live in two places: the few that ship with the package
(prediction_machine/data/recordings) and the ones `prediction-machine record` saves, in
$PREDICTION_MACHINE_RECORDINGS or ~/.local/share/prediction-machine/recordings.
"""

from __future__ import annotations

import json
import os
import re
from importlib.resources import files
from pathlib import Path

from prediction_machine import limits

FORMAT = 1
KINDS = ("generation", "pretraining")
NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # a recording's name: its file name without .json
SHIPPED = Path(str(files("prediction_machine") / "data" / "recordings"))


class RecordingError(ValueError):
    """A recording that is missing, too large or not in the format above."""


def recordings_dir(create: bool = False) -> Path:
    """$PREDICTION_MACHINE_RECORDINGS, else ~/.local/share/prediction-machine/recordings (XDG_DATA_HOME)."""
    root = os.environ.get("PREDICTION_MACHINE_RECORDINGS") or Path(
        os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    ) / "prediction-machine" / "recordings"
    path = Path(root)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def check(rec: dict) -> dict:
    """The recording itself if it has the shape above, else RecordingError naming what is wrong.

    check({"format": 1, "kind": "generation", "title": "t", "events": [["done", {}]]}) -> the same dict
    """
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise RecordingError(f"format: a recording says \"format\": {FORMAT}")
    if rec.get("kind") not in KINDS:
        raise RecordingError(f"kind: {rec.get('kind')!r} is not one of {', '.join(KINDS)}")
    if not isinstance(rec.get("title"), str) or not rec["title"]:
        raise RecordingError("title: a recording has a title")
    events = rec.get("events")
    if not isinstance(events, list) or not events or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], dict)
            for e in events):
        raise RecordingError("events: a recording holds a non-empty list of [name, data] pairs")
    if events[-1][0] not in ("done", "error"):
        raise RecordingError("events: the last event is the stream's end (done or error)")
    return rec


def dumps(rec: dict) -> str:
    """The file's text: compact, and refused when over the size limit (a replay is a small thing)."""
    text = json.dumps(check(rec), separators=(",", ":"), ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size > limits.MAX_RECORDING_BYTES:
        raise RecordingError(f"size: {size:,} bytes is more than a recording may hold "
                             f"({limits.MAX_RECORDING_BYTES:,}); record fewer tokens or steps")
    return text


def save(rec: dict, name: str, folder: Path | None = None) -> Path:
    """Write the recording as NAME.json in `folder` (default recordings_dir()); returns the path."""
    if not re.match(NAME, name):
        raise RecordingError(f"name: {name!r} must be letters, digits, - or _ (at most 64, no dot or slash)")
    folder = Path(folder) if folder is not None else recordings_dir(create=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    text = dumps(rec)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return path


def _folders() -> list[tuple[str, Path]]:
    return [("shipped", SHIPPED), ("recorded", recordings_dir())]


def _path(name: str) -> Path | None:
    if not re.match(NAME, name):
        return None
    for _, folder in reversed(_folders()):  # the user's own recording wins over a shipped one of that name
        path = folder / f"{name}.json"
        if path.is_file():
            return path
    return None


def load(name: str) -> dict:
    """The recording called `name` (shipped or saved), checked; RecordingError when missing or bad."""
    path = _path(name)
    if path is None:
        raise RecordingError(f"name: there is no recording called {name!r}")
    if path.stat().st_size > limits.MAX_RECORDING_BYTES:
        raise RecordingError(f"name: {name!r} is larger than {limits.MAX_RECORDING_BYTES:,} bytes")
    try:
        return check(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise RecordingError(f"name: {name!r} is not valid JSON ({e.msg})") from None


def catalogue() -> list[dict]:
    """One line per recording: name, kind, title, where it comes from, size. The newest saved first,
    then the shipped ones; at most limits.MAX_RECORDINGS listed, and unreadable files left out."""
    seen, out = set(), []
    for source, folder in reversed(_folders()):
        paths = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) \
            if folder.is_dir() else []
        for path in paths:
            name = path.stem
            if name in seen or not re.match(NAME, name) or path.stat().st_size > limits.MAX_RECORDING_BYTES:
                continue
            try:
                rec = check(json.loads(path.read_text(encoding="utf-8")))
            except (RecordingError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            seen.add(name)
            out.append({"name": name, "kind": rec["kind"], "title": rec["title"], "source": source,
                        "recorded_at": rec.get("recorded_at"), "model": rec.get("model"),
                        "events": len(rec["events"]), "bytes": path.stat().st_size})
            if len(out) >= limits.MAX_RECORDINGS:
                return out
    return out
