"""A checkpoint folder from outside, checked before anything is built from it.

A `--model` folder is data from the internet: its JSON may be malformed, its sizes strings,
negative or zero, or large enough to ask for more memory than this machine has. Each check
here raises a ValueError whose message is one line; weights.read_folder turns every failure
into a WeightsError, so the CLI prints one line and exits 2, and `serve` refuses to start.

    >>> checked_config({"vocab_size": 512, "d_model": 128, "n_layers": 4, "n_heads": 4,
    ...                 "n_kv_heads": 2, "d_ff": 384, "max_seq_len": 128}).num_parameters()
    853120
"""

from __future__ import annotations

import math
import os
from dataclasses import fields

from prediction_machine.config import ModelConfig

# Each size, bounded far above any model this project runs (SmolLM2-135M: 49,152 x 576, 30 layers).
BOUNDS = {"vocab_size": 1 << 20, "d_model": 1 << 16, "n_layers": 1024, "n_heads": 1024, "n_kv_heads": 1024,
          "d_ff": 1 << 18, "max_seq_len": 1 << 20}
BYTES = 4  # float32: how the decoder holds its weights


def available_bytes() -> int:
    """Memory this machine can still give (Linux's MemAvailable), or all of it where that is unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def checked_config(values: dict) -> ModelConfig:
    """The ModelConfig of a folder's config values, once each size is a whole number within BOUNDS,
    the sizes fit together, and the weights they ask for fit in this machine's free memory."""
    if not isinstance(values, dict):
        raise ValueError(f"config is a {type(values).__name__}, not a JSON object")
    known = {f.name for f in fields(ModelConfig)}
    values = {k: v for k, v in values.items() if k in known}  # a newer file's extra keys are ignored
    for name, bound in BOUNDS.items():
        if name not in values:
            raise ValueError(f"config has no {name}")
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"config {name} is {str(value)[:40]!r}, not a whole number")
        if not 1 <= value <= bound:
            raise ValueError(f"config {name} is {value}; it must be between 1 and {bound:,}")
    for name in ("rope_base", "norm_eps"):
        value = values.get(name, 1.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
            raise ValueError(f"config {name} is {str(value)[:40]!r}, not a positive number")
    cfg = ModelConfig(**values)  # checks that the heads divide the width
    needed, free = cfg.num_parameters() * BYTES, available_bytes()
    if needed > free:
        raise ValueError(f"config asks for {needed / 1e9:.1f} GB of weights "
                         f"({cfg.num_parameters():,} parameters); this machine has {free / 1e9:.1f} GB free")
    return cfg


def one_line(error: BaseException) -> str:
    """An exception from reading a hostile file as one short line: its kind and the first line of its text."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__
