"""The scale panel's durations read at a glance: two significant figures, big counts in words."""

import pytest

from prediction_machine.training.curriculum.scale import YEAR, about, human_time


@pytest.mark.parametrize("x,words", [(10_492_468.8, "about 10 million"), (2_345.6, "about 2,300"),
                                     (999.6, "about 1,000"), (12.34, "12"), (3.456, "3.5"),
                                     (4.2e10, "about 42 billion")])
def test_about_keeps_two_significant_figures(x, words):
    assert about(x) == words


def test_a_ten_million_year_estimate_has_no_decimals():
    assert human_time(10_492_468.8 * YEAR) == "about 10 million years"
    assert human_time(90) == "1.5 minutes" and human_time(5) == "5.0 seconds"
