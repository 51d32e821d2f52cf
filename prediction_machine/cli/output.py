"""What every command shares: the console, one-line usage errors, JSON output, loading a model."""

from __future__ import annotations

import argparse
import json
import math
import sys

from rich.console import Console

from prediction_machine.limits import MAX_TEMPERATURE


class _Console(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # rich would exit 1; main() treats a reader that left as a normal end


console = _Console(stderr=False, highlight=False)


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


# ----------------------------------------------------------------------------- helpers


def finite(text: str) -> float:
    """An argparse type: a finite number. finite("0.5") -> 0.5; finite("nan") -> error"""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def check_temperature(value: float) -> float:
    """A temperature the CLI accepts: 0 (greedy) to MAX_TEMPERATURE, as every API does; else a UsageError."""
    if not 0 <= value <= MAX_TEMPERATURE:
        raise UsageError(f"--temperature must be between 0 (greedy) and {MAX_TEMPERATURE:g}, got {value:g}")
    return value


def load_model(name: str | None):
    from prediction_machine.model import models
    from prediction_machine.model.weights import WeightsError

    try:
        shown = name or models.DEFAULT_MODEL
        loading = console.status(f"loading {shown} ...") if sys.stdout.isatty() else _null()
        with loading:
            return models.load(name, probe_layouts=False)  # one command: no layout probe (a server's job)
    except WeightsError as e:
        raise UsageError(str(e)) from None


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def visible(text: str) -> str:
    """Make whitespace visible in terminal tables: ' ' -> '␣', '\\n' -> '↵'."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")


def emit(data: dict) -> None:
    print(json.dumps(data, ensure_ascii=False, allow_nan=False))
