"""The note tokenizer: a tune <-> token ids. Each note is two tokens: its pitch, then its length.

    id 0        the start of a tune
    id 1        the end of a tune
    ids 2..31   a pitch, MIDI 55 (G below middle C) .. 84 (C two octaves up)
    ids 32..39  a length in quarter notes: 1/4, 1/2, 3/4, 1, 1 1/2, 2, 3, 4

Why two tokens and not one per (pitch, length) pair: 30 + 8 choices instead of 240, so each
is seen far more often in 327 short tunes, and the page can show the pitch choice (which
note?) and the rhythm choice (how long?) as two readable distributions.

    >>> encode([(60, 1.0), (62, 0.5)])
    [0, 7, 35, 9, 33, 1]
    >>> decode([0, 7, 35, 9, 33, 1])
    [(60, 1.0), (62, 0.5)]
"""

from __future__ import annotations

import re

START, END = 0, 1
LOW, HIGH = 55, 84  # the MIDI pitches a token exists for
FIRST_PITCH = 2
LENGTHS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
FIRST_LENGTH = FIRST_PITCH + HIGH - LOW + 1
VOCAB = FIRST_LENGTH + len(LENGTHS)
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
NAME = re.compile(r"([A-Ga-g])([#b]?)(-?[0-9]{1,3})")  # a typed name: letter, accidental, octave
BEATS = re.compile(r"[0-9]{1,3}(\.[0-9]{1,6})?|\.[0-9]{1,6}")  # a typed length in beats: 2, 1.5, .5


def nearest_length(quarters: float) -> int:
    """Index of the closest length we have a token for. 0.125 -> 0 (1/4), 6.0 -> 7 (4)."""
    return min(range(len(LENGTHS)), key=lambda i: abs(LENGTHS[i] - quarters))


def pitch_token(pitch: int) -> int:
    if not LOW <= pitch <= HIGH:
        raise ValueError(f"pitch {pitch} ({note_name(pitch)}) is outside {note_name(LOW)}..{note_name(HIGH)}")
    return FIRST_PITCH + pitch - LOW


def encode(notes: list[tuple[int, float]], end: bool = True) -> list[int]:
    """START, then pitch and length tokens for each note, then END (unless end=False: a prompt)."""
    ids = [START]
    for pitch, quarters in notes:
        ids += [pitch_token(pitch), FIRST_LENGTH + nearest_length(quarters)]
    return ids + [END] if end else ids


def is_pitch(token: int) -> bool:
    return FIRST_PITCH <= token < FIRST_LENGTH


def is_length(token: int) -> bool:
    return FIRST_LENGTH <= token < VOCAB


def decode(ids: list[int]) -> list[tuple[int, float]]:
    """(pitch, quarters) for each pitch token followed by a length token; anything else is skipped."""
    notes = []
    for a, b in zip(ids, ids[1:], strict=False):
        if is_pitch(a) and is_length(b):
            notes.append((a - FIRST_PITCH + LOW, LENGTHS[b - FIRST_LENGTH]))
    return notes


def note_name(pitch: int) -> str:
    """Scientific pitch name: 60 -> 'C4', 70 -> 'Bb4'."""
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


def parse_name(text: str) -> int:
    """A typed note name back to MIDI: 'C4' -> 60, 'f#4' -> 66, 'Bb3' -> 58, 'Db5' -> 73.

    One accidental at most ('C#######4' is not G4), and the octave in ASCII digits only, as a
    length's beats are (melody.parse_notes): a full-width '４' is refused in both places.
    """
    found = NAME.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a note name like C4, F#4 or Bb3 "
                         "(a letter A-G, at most one # or b, then the octave number)")
    letter, accidental, octave = found.groups()
    alter = {"#": 1, "b": -1, "": 0}[accidental]
    return 12 * (int(octave) + 1) + NAMES.index(letter.upper()) + alter


def label(token: int) -> str:
    """A token as the page names it: 'C4', '1 1/2 beats', 'start', 'end'."""
    if token == START:
        return "start"
    if token == END:
        return "end"
    if is_pitch(token):
        return note_name(token - FIRST_PITCH + LOW)
    q = LENGTHS[token - FIRST_LENGTH]
    whole, part = int(q), q - int(q)
    frac = {0.25: "1/4", 0.5: "1/2", 0.75: "3/4"}.get(part, "")
    text = (f"{whole} {frac}" if whole and frac else frac or str(whole)).strip()
    return f"{text} beats" if q > 1 else f"{text} beat"  # 1/2 beat, 1 beat, 1 1/2 beats
