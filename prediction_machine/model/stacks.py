"""Each layer's q, k and v weights in one buffer, and its gate and up weights in another.

The fused decoder (engine/fastpath.py) multiplies a layer's queries, keys and values with one product
over their stacked rows, and its gate and up the same way. If the model's matrices were separate
tensors, those stacks would be a second copy: 278 MB for SmolLM2. So the loader puts them there
from the start, and the model's own q, k, v (gate, up) weights are views of the stack: every number
is held once, and the textbook model computes exactly what it did, from the same values.

    state = read_stacked(path)   # {"blocks.0.attn.q.weight": a view of rows 0..575 of one buffer, ...}

The weights cache is a safetensors file: 8 bytes giving the header's length, a JSON header with each
tensor's dtype, shape and byte range, then the bytes. We read it ourselves rather than memory-map it
(safetensors.torch.load_file): pages of a mapped file that were read stay resident, so a copy made
from them would be held beside them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

STACKS = (("attn.q", "attn.k", "attn.v"), ("mlp.gate", "mlp.up"))  # per block, in the order of the rows


def groups(names, shapes: dict[str, list[int]]) -> list[list[str]]:
    """The state's names, grouped: each block's stacks (when all parts are there and their widths
    agree), then every other tensor alone.

    >>> groups(["blocks.0.attn.k.weight", "blocks.0.attn.q.weight", "blocks.0.attn.v.weight", "norm.weight"],
    ...        {"blocks.0.attn.q.weight": [4, 2], "blocks.0.attn.k.weight": [2, 2],
    ...         "blocks.0.attn.v.weight": [2, 2], "norm.weight": [2]})
    [['blocks.0.attn.q.weight', 'blocks.0.attn.k.weight', 'blocks.0.attn.v.weight'], ['norm.weight']]
    """
    names, out, taken = list(names), [], set()
    blocks = sorted({int(n.split(".")[1]) for n in names if n.startswith("blocks.")})
    for b in blocks:
        for parts in STACKS:
            group = [f"blocks.{b}.{p}.weight" for p in parts]
            if all(n in shapes and len(shapes[n]) == 2 for n in group) and \
                    len({shapes[n][1] for n in group}) == 1:
                out.append(group)
                taken.update(group)
    return out + [[n] for n in names if n not in taken]


def stack(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same state with each group copied into one buffer (the parts become views of it).

    For weights that were not read by read_stacked (a freshly dequantized GGUF): the separate
    tensors are dropped as their entries are replaced, so the copy is transient, one group at a time.
    """
    out = {}
    for group in groups(state, {n: list(t.shape) for n, t in state.items()}):
        if len(group) == 1:
            out[group[0]] = state[group[0]]
            continue
        buffer = torch.cat([state[n] for n in group])  # (rows of every part, in)
        row = 0
        for n in group:
            rows = state[n].shape[0]
            out[n] = buffer[row : row + rows]  # (rows, in): a view of the buffer
            row += rows
    return out


def read_stacked(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file of float32 tensors, read into memory this process owns, stacks already made."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        header.pop("__metadata__", None)
        start = 8 + size
        shapes = {n: info["shape"] for n, info in header.items()}
        if any(info["dtype"] != "F32" for info in header.values()):
            raise ValueError(f"{path.name}: only float32 tensors are read here")
        state = {}
        for group in groups(header, shapes):
            if len(group) == 1:
                buffer = torch.empty(shapes[group[0]])  # a tensor of its own
            else:
                buffer = torch.empty(sum(shapes[n][0] for n in group), shapes[group[0]][1])  # (rows, in)
            row = 0
            for n in group:
                part = buffer if len(group) == 1 else buffer[row : row + shapes[n][0]]  # a view of the buffer
                begin, end = header[n]["data_offsets"]
                read_into(f, start + begin, end - begin, part)
                state[n] = part
                row += part.shape[0] if part.dim() else 0
        return state


def read_into(f, offset: int, nbytes: int, t: torch.Tensor) -> None:
    """Fill the contiguous tensor `t` with `nbytes` bytes of the file at `offset`."""
    view = memoryview(t.numpy()).cast("B")  # t's own memory, byte by byte
    if len(view) != nbytes:
        raise ValueError(f"a tensor of {len(view)} bytes is stored in {nbytes}")
    f.seek(offset)
    done = 0
    while done < nbytes:
        got = f.readinto(view[done:])
        if not got:
            raise ValueError("the file ends inside a tensor")
        done += got
