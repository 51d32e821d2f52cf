"""A standard MIDI file, written by hand: a short binary format, no dependency needed.

Reference: the Standard MIDI File 1.0 specification. A file is a header chunk and one track:

    "MThd" length=6  format=0  tracks=1  ticks-per-quarter
    "MTrk" length    events: <delta time as a variable-length number> <event bytes> ... end of track

A variable-length number keeps 7 bits per byte, high byte first, with the top bit set on all
but the last: 0 -> 00, 127 -> 7F, 128 -> 81 00, 480 -> 83 60.
"""

from __future__ import annotations

import struct

TICKS = 480  # per quarter note
TEMPO_US = 750_000  # microseconds per quarter note: 80 beats per minute, a chorale's pace
PIANO = 0  # General MIDI program 1, acoustic grand piano
VELOCITY = 80


def varlen(n: int) -> bytes:
    """7 bits per byte, high byte first.

    >>> varlen(480).hex()
    '8360'
    """
    if n < 0:
        raise ValueError("a delta time cannot be negative")
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[tuple[int, float]], tempo_us: int = TEMPO_US) -> bytes:
    """One track, one channel: each (MIDI pitch, length in quarter notes) played one after another."""
    events = bytearray()
    events += varlen(0) + b"\xff\x51\x03" + tempo_us.to_bytes(3, "big")  # set tempo
    events += varlen(0) + bytes([0xC0, PIANO])  # program change on channel 1
    for pitch, quarters in notes:
        if not 0 <= pitch <= 127:
            raise ValueError(f"MIDI pitches are 0..127, got {pitch}")
        events += varlen(0) + bytes([0x90, pitch, VELOCITY])  # note on
        events += varlen(round(quarters * TICKS)) + bytes([0x80, pitch, 0])  # note off, one length later
    events += varlen(0) + b"\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS)
    return header + b"MTrk" + struct.pack(">I", len(events)) + bytes(events)


def read_notes(data: bytes) -> list[tuple[int, float]]:
    """The notes back from a file midi_bytes wrote (for the tests: a round trip through the bytes)."""
    if data[:4] != b"MThd" or data[14:18] != b"MTrk":
        raise ValueError("not a single-track standard MIDI file")
    ticks = struct.unpack(">H", data[12:14])[0]
    end = 22 + struct.unpack(">I", data[18:22])[0]
    i, now, started, notes = 22, 0, {}, []
    while i < end:
        delta = 0
        while True:
            b = data[i]
            i += 1
            delta = (delta << 7) | (b & 0x7F)
            if b < 0x80:
                break
        now += delta
        status = data[i]
        if status == 0xFF:
            length = data[i + 2]
            i += 3 + length
        elif status & 0xF0 == 0xC0:
            i += 2
        else:
            pitch = data[i + 1]
            if status & 0xF0 == 0x90 and data[i + 2] > 0:
                started[pitch] = now
            else:
                notes.append((pitch, (now - started.pop(pitch)) / ticks))
            i += 3
    return notes
