"""A GGUF file, read in well under a second: its metadata as Python values, its tensors as float32.

GGUF (llama.cpp's format) is a header of key/value metadata and tensor descriptions, then the
tensors' bytes. The `gguf` package's reader makes a numpy view for every value of the header,
which for SmolLM2's 49,152 tokens and 48,900 merges takes seconds (docs/performance.md); this file
walks the header with `struct` instead, and dequantizes the two block formats the default model
uses (Q4_1, Q8_0) in place with numpy. Other block formats go to `gguf.quants.dequantize`.
tests/test_weights.py checks both against the `gguf` package, bit for bit.

Layout of the file (little-endian, version 2 or 3):

    "GGUF" | version u32 | tensor count u64 | key count u64
    key count x (key: string, type: u32, value)           string = length u64 + UTF-8 bytes
    tensor count x (name: string, dims: u32 + u64 each, type: u32, offset u64)
    padding to `general.alignment` (32), then each tensor's bytes at its offset

A Q4_1 block holds 32 weights in 20 bytes: scale d and minimum m (float16 each), then 16 bytes
of 4-bit codes q, low nibbles for weights 0-15 and high nibbles for 16-31; a weight is d*q + m.
A Q8_0 block holds 32 weights in 34 bytes: scale d (float16) and 32 signed bytes q; a weight is d*q.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MAGIC = b"GGUF"
SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
           10: "<Q", 11: "<q", 12: "<d"}  # struct formats of GGUF's scalar value types
NUMPY = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32,
         7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}
STRING, ARRAY = 8, 9
F32, F16, Q4_1, Q8_0 = 0, 1, 3, 8  # ggml's tensor type numbers
BLOCK = {Q4_1: (32, 20), Q8_0: (32, 34)}  # weights per block, bytes per block


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # numpy order: (out, in) for a matrix (GGUF stores the reverse)
    kind: int  # ggml tensor type
    offset: int  # from the start of the file


class Header:
    """Walks the header of `buf` from the start, one value at a time."""

    def __init__(self, buf: bytes):
        self.buf, self.at = buf, 0

    def scalar(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.scalar("<Q")
        self.at += n
        return self.buf[self.at - n : self.at].decode("utf-8")

    def value(self, kind: int):
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            item, n = self.scalar("<I"), self.scalar("<Q")
            if item in NUMPY:  # numbers: one numpy view, no loop
                out = np.frombuffer(self.buf, NUMPY[item], n, self.at)
                self.at += out.nbytes
                return out
            return [self.value(item) for _ in range(n)]  # strings (or nested arrays)
        return self.scalar(SCALARS[kind])


def read(path: Path) -> tuple[dict, list[TensorInfo], bytes]:
    """The metadata, the tensors' descriptions and the file's bytes (tensors are read from them)."""
    buf = Path(path).read_bytes()
    if buf[:4] != MAGIC:
        raise ValueError(f"{Path(path).name} is not a GGUF file")
    h = Header(buf)
    h.at = 4
    version, n_tensors, n_keys = h.scalar("<I"), h.scalar("<Q"), h.scalar("<Q")
    if version not in (2, 3):
        raise ValueError(f"{Path(path).name}: GGUF version {version} is not supported (2 or 3)")
    fields = {}
    for _ in range(n_keys):
        key = h.string()
        fields[key] = h.value(h.scalar("<I"))
    infos = []
    for _ in range(n_tensors):
        name = h.string()
        dims = [h.scalar("<Q") for _ in range(h.scalar("<I"))]
        kind, offset = h.scalar("<I"), h.scalar("<Q")
        infos.append(TensorInfo(name, tuple(reversed(dims)), kind, offset))
    align = int(fields.get("general.alignment", 32))
    start = -(-h.at // align) * align  # the header, padded to the alignment
    for t in infos:
        t.offset += start
    return fields, infos, buf


def dequantize(buf: bytes, t: TensorInfo) -> torch.Tensor:
    """One tensor as float32, in its numpy shape: the same numbers as gguf.quants.dequantize."""
    n = int(np.prod(t.shape))
    if t.kind in (F32, F16):
        w = np.frombuffer(buf, np.float32 if t.kind == F32 else np.float16, n, t.offset).astype(np.float32)
        return torch.from_numpy(w).view(t.shape)  # a copy: the file's bytes can go
    if t.kind in BLOCK:  # numpy, one thread: on a busy 2-core machine torch's two threads were 5x slower here
        per, size = BLOCK[t.kind]
        blocks = np.frombuffer(buf, np.uint8, n // per * size, t.offset).reshape(n // per, size)  # a view
        d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (blocks, 1) scales
        w = np.empty((n // per, per), np.float32)  # (blocks, 32), filled in place: no temporaries
        if t.kind == Q4_1:
            qs = blocks[:, 4:]  # (blocks, 16): two 4-bit codes a byte, low nibbles first
            w[:, : per // 2], w[:, per // 2 :] = qs & 0x0F, qs >> 4
            w *= d
            w += blocks[:, 2:4].copy().view(np.float16).astype(np.float32)  # + m, (blocks, 1) minimums
        else:
            w[:] = blocks[:, 2:].copy().view(np.int8)
            w *= d
        return torch.from_numpy(w).view(t.shape)
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize  # any other block format: the reference code

    kind = GGMLQuantizationType(t.kind)
    per, size = GGML_QUANT_SIZES[kind]
    row_bytes = t.shape[-1] // per * size
    rows = np.frombuffer(buf, np.uint8, n // per * size, t.offset).reshape(*t.shape[:-1], row_bytes)
    return torch.from_numpy(gguf_dequantize(rows, kind).astype(np.float32)).view(t.shape)
