"""Typed notes for the melody model: one accidental at most, ASCII digits only, limits said truly."""

from __future__ import annotations

import pytest

from prediction_machine.sequences import melody
from prediction_machine.sequences import note_tokens as nt


@pytest.mark.parametrize("name", ["C#######4", "Cbb4", "C#b4", "C4#", "C１", "C-4x"])
def test_a_name_with_more_than_one_accidental_or_a_foreign_digit_is_refused(name):
    with pytest.raises(ValueError, match="is not a note name"):
        nt.parse_name(name)


def test_lengths_take_the_same_digits_as_octaves():
    assert melody.parse_notes("C4:1.5 D4:.5 E4:2") == [(60, 1.5), (62, 0.5), (64, 2.0)]
    for word in ("C4:２", "C4:1_0", "C4:1e0", "C4:nan", "C4:+1"):
        with pytest.raises(ValueError, match="a length is a number of beats"):
            melody.parse_notes(word)


def test_the_start_limit_is_the_one_the_message_states():
    limit = melody.MAX_NOTES - 1  # the start leaves room for at least one new note
    with pytest.raises(ValueError) as refused:
        melody.compose([(60, 1.0)] * (limit + 1), melody.SamplingParams(), 0, 1, model=object())
    assert f"at most {limit} notes" in str(refused.value)
    assert len(melody.compose([(60, 1.0)] * limit, melody.SamplingParams(), 0, 1)["notes"]) >= limit
