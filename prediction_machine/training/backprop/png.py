"""A minimal PNG writer (zlib + CRC32 from the standard library) and the decision-boundary picture.

Reference: the PNG specification (W3C, 2nd edition): signature, IHDR, IDAT, IEND chunks,
each chunk = length, type, data, CRC-32 of type + data; 8-bit RGB rows each prefixed by a
filter byte (0 = none).
"""

from __future__ import annotations

import struct
import zlib

from prediction_machine.training.backprop.datasets import EXTENT

# Okabe-Ito: distinguishable with every common form of colour blindness.
CLASS_COLOURS = ((0x00, 0x72, 0xB2), (0xE6, 0x9F, 0x00))  # class 0 blue, class 1 orange
PAPER = (0xFD, 0xFC, 0xF9)


def png_bytes(pixels: list[list[tuple[int, int, int]]]) -> bytes:
    """Encode rows of (r, g, b) pixels, top row first, as a PNG file."""
    height, width = len(pixels), len(pixels[0])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits per channel, colour type 2 = RGB
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def boundary_pixels(grid: list[list[float]], points: list[tuple[float, float, int]],
                    scale: int = 8) -> list[list[tuple[int, int, int]]]:
    """The heatmap of P(class 1) (grid row 0 = top), each cell scale² pixels, with the points on top.

    The colour says which class the network predicts; its strength says how sure it is
    (pale near P = 0.5, the decision boundary).
    """
    R = len(grid)
    size = R * scale
    pixels = []
    for r in range(size):
        row = []
        for c in range(size):
            p = grid[r // scale][c // scale]
            row.append(_mix(PAPER, CLASS_COLOURS[p > 0.5], min(1.0, abs(p - 0.5) * 2) * 0.55))
        pixels.append(row)
    for x, y, label in points:
        cx = round((x + EXTENT) / (2 * EXTENT) * (size - 1))
        cy = round((EXTENT - y) / (2 * EXTENT) * (size - 1))
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                px, py = cx + dx, cy + dy
                if 0 <= px < size and 0 <= py < size:
                    edge = max(abs(dx), abs(dy)) == 3
                    pixels[py][px] = (0x1D, 0x1D, 0x1F) if edge else CLASS_COLOURS[label]
    return pixels
