"""The two data sets, read straight from the files their packages ship (nothing is downloaded).

- Digits: scikit-learn's wheel holds `sklearn/datasets/data/digits.csv.gz`, 1,797 images of
  8 x 8 pixels with grey levels 0..16, each row 64 pixels then the label.
- Chorales: music21's wheel holds Bach's chorales as MusicXML under `music21/corpus/bach/`.
  We take the top line (the soprano, the tune) of each score.

Neither package is imported: importing scikit-learn takes about 1.1 s (it pulls in SciPy) and
music21 about 0.4 s, and music21's own parser needs minutes for all the scores. ElementTree
reads the files in a few seconds, once; the notes are then cached as JSON in the user's cache
folder (never in the repository: the chorales are not ours to commit).

A fixed, seeded split keeps a held-out set for every number we report.
"""

from __future__ import annotations

import gzip
import json
import random
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from xml.etree import ElementTree

from prediction_machine.model import weights

HELD_OUT = 0.2  # share of each data set kept out of training
SPLIT_SEED = 2024
CACHE_VERSION = 1


class DataMissing(RuntimeError):
    """A data package is not installed."""


def package_file(dist: str, path: str) -> Path:
    """A file inside an installed distribution, found without importing the package."""
    try:
        found = Path(distribution(dist).locate_file(path))
    except PackageNotFoundError as e:
        raise DataMissing(f"{dist} is not installed: run `pip install {dist}`") from e
    if not found.exists():
        raise DataMissing(f"{dist} is installed but {path} is missing; reinstall it")
    return found


def split(n: int) -> tuple[list[int], list[int]]:
    """Indices 0..n-1 shuffled with a fixed seed, then cut into (train, held-out)."""
    order = list(range(n))
    random.Random(SPLIT_SEED).shuffle(order)
    cut = round(n * (1 - HELD_OUT))
    return sorted(order[:cut]), sorted(order[cut:])


# ----------------------------------------------------------------------------- digits


@dataclass(frozen=True)
class Digits:
    images: list[list[int]]  # each 64 grey levels 0..16, row by row from the top left
    labels: list[int]  # 0..9
    train: list[int]  # indices into images
    held_out: list[int]


@lru_cache(maxsize=1)
def digits() -> Digits:
    path = package_file("scikit-learn", "sklearn/datasets/data/digits.csv.gz")
    text = gzip.decompress(path.read_bytes()).decode()
    rows = [line.split(",") for line in text.split("\n") if line.strip()]
    images = [[int(float(v)) for v in r[:64]] for r in rows]
    labels = [int(float(r[64])) for r in rows]
    train, held_out = split(len(images))
    return Digits(images, labels, train, held_out)


# ----------------------------------------------------------------------------- chorales


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI number, 60 = middle C, after transposing to no sharps or flats
    quarters: float  # length in quarter notes (1 = a crotchet)


def key_shift(fifths: int) -> int:
    """Semitones that move a key signature of `fifths` sharps (negative: flats) to none.

    The smaller shift, up or down: 1 sharp (G major) -> +5; 2 sharps (D) -> -2; 3 flats (E flat) -> -3.
    """
    up = (-7 * fifths) % 12  # each sharp is a fifth (7 semitones) up
    return up - 12 if up > 6 else up


def top_line(xml: bytes) -> tuple[list[tuple[int, float]], int, str]:
    """The first part's notes as (MIDI pitch, quarters), its key signature (fifths) and mode.

    Tied notes are joined into one; rests, grace notes and chord tones under the tune are skipped.
    """
    root = ElementTree.fromstring(xml)
    part = root.find("part")
    if part is None:
        return [], 0, "major"
    steps = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    divisions, fifths, mode, notes, tied = 1, None, "major", [], False
    for measure in part.iter("measure"):
        for el in measure:
            if el.tag == "attributes":
                divisions = int(el.findtext("divisions") or divisions)
                if fifths is None and el.find("key/fifths") is not None:
                    fifths = int(el.findtext("key/fifths"))
                    mode = (el.findtext("key/mode") or "major").strip()
            if el.tag != "note" or el.find("grace") is not None or el.find("chord") is not None:
                continue
            if el.findtext("voice", "1").strip() != "1" or el.find("rest") is not None:
                continue
            quarters = int(el.findtext("duration") or 0) / divisions
            step = el.findtext("pitch/step")
            alter = int(float(el.findtext("pitch/alter") or 0))
            pitch = 12 * (int(el.findtext("pitch/octave")) + 1) + steps[step] + alter
            ties = {t.get("type") for t in el.findall("tie")}
            if tied and "stop" in ties and notes and notes[-1][0] == pitch:
                notes[-1] = (pitch, notes[-1][1] + quarters)
            else:
                notes.append((pitch, quarters))
            tied = "start" in ties
    return notes, fifths or 0, mode


def _score_files() -> list[Path]:
    folder = package_file("music21", "music21/corpus/bach")
    return sorted(p for p in folder.iterdir() if p.suffix in (".mxl", ".xml"))


def _read_score(path: Path) -> bytes:
    if path.suffix == ".xml":
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist()
                    if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF"))
        return z.read(name)


def parse_chorales() -> list[dict]:
    """Every score's tune, transposed to no sharps or flats (C major or A minor), as plain dicts."""
    out = []
    for path in _score_files():
        notes, fifths, mode = top_line(_read_score(path))
        if len(notes) < 8:
            continue  # a fragment, not a tune
        shift = key_shift(fifths)
        out.append({"name": path.stem, "mode": mode, "shift": shift,
                    "notes": [[p + shift, round(q, 4)] for p, q in notes]})
    return out


@dataclass(frozen=True)
class Chorales:
    tunes: list[list[Note]]
    names: list[str]
    modes: list[str]  # "major" or "minor"
    train: list[int]
    held_out: list[int]
    cache_file: str  # where the parsed notes are kept


@lru_cache(maxsize=1)
def chorales() -> Chorales:
    """The tunes, parsed once and cached in the user's cache folder (about 5 s the first time)."""
    version = distribution("music21").version if _score_files() else "none"
    cache = weights.cache_dir() / f"chorale-tunes-v{CACHE_VERSION}-music21-{version}.json"
    if cache.is_file():
        records = json.loads(cache.read_text())
    else:
        records = parse_chorales()
        weights.atomic_write_bytes(cache, lambda t: Path(t).write_text(json.dumps(records)))
    tunes = [[Note(p, q) for p, q in r["notes"]] for r in records]
    train, held_out = split(len(tunes))
    names, modes = [r["name"] for r in records], [r["mode"] for r in records]
    return Chorales(tunes, names, modes, train, held_out, str(cache))
