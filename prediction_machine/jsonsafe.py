"""Numbers fit for JSON: one convention for the whole package.

JSON has no NaN or Infinity. Rather than pretend (0.0 for NaN, or a huge finite number for
Infinity), a number that is not finite becomes `None`, which JSON writes as `null`: the
reader sees that there is no value, not a wrong one.
"""

from __future__ import annotations

import math


def json_number(x: float | None, digits: int | None = None) -> float | None:
    """A float for JSON: rounded to `digits` decimals (if given); None for NaN, infinity or None.

    json_number(0.123456, 3) -> 0.123;  json_number(float("inf")) -> None;  json_number(2) -> 2.0
    """
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return x if digits is None else round(x, digits)


def json_numbers(x, digits: int | None = None):
    """`json_number` applied to every float of nested lists and dicts; other values kept as they are.

    json_numbers({"loss": [0.51234, float("nan")], "step": 3}, 2) -> {"loss": [0.51, None], "step": 3}
    """
    if isinstance(x, dict):
        return {k: json_numbers(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_numbers(v, digits) for v in x]
    return json_number(x, digits) if isinstance(x, float) else x
