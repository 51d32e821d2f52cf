"""One convention for numbers in JSON: rounded, and None (null) when not finite."""

import json
import math

from prediction_machine.jsonsafe import json_number, json_numbers


def test_json_number():
    assert json_number(0.123456, 3) == 0.123
    assert json_number(0.123456) == 0.123456
    assert json_number(2) == 2.0 and isinstance(json_number(2), float)
    assert json_number(float("nan")) is None and json_number(float("inf"), 2) is None
    assert json_number(-math.inf) is None and json_number(None) is None


def test_json_numbers_nested_is_strict_json():
    got = json_numbers([[1.23456, float("nan")], [float("-inf"), 2.0]], 2)
    assert got == [[1.23, None], [None, 2.0]]
    assert json.dumps(got, allow_nan=False) == "[[1.23, null], [null, 2.0]]"


def test_json_numbers_walks_dicts_and_keeps_what_is_not_a_float():
    event = {"loss": [0.51234, float("nan")], "step": 3, "name": "run", "done": True, "pair": (1.0, None)}
    assert json_numbers(event, 2) == {"loss": [0.51, None], "step": 3, "name": "run", "done": True,
                                      "pair": [1.0, None]}
