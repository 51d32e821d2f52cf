"""Sampling functions, pinned by hand-worked examples."""

import math

import pytest
import torch

from prediction_machine.inference.prediction import entropy_bits, predict
from prediction_machine.inference.sampling import (
    SamplingParams,
    distribution,
    draw,
    make_generator,
    min_p_mask,
    top_k_mask,
    top_p_mask,
)

LOGITS = torch.tensor([2.0, 1.0, 0.0])


def test_docstring_example():
    probs = distribution(LOGITS, SamplingParams(temperature=1.0))
    assert probs.tolist() == pytest.approx([0.665241, 0.244728, 0.090031], abs=1e-6)
    k2 = distribution(LOGITS, SamplingParams(temperature=1.0, top_k=2))
    assert k2.tolist() == pytest.approx([0.731059, 0.268941, 0.0], abs=1e-6)


def test_masks_by_hand():
    p = torch.tensor([0.5, 0.3, 0.2])
    assert top_k_mask(p, 2).tolist() == [True, True, False]
    assert top_p_mask(p, 0.7).tolist() == [True, True, False]
    assert top_p_mask(p, 0.5).tolist() == [True, False, False]
    assert top_p_mask(p, 0.51).tolist() == [True, True, False]
    assert min_p_mask(torch.tensor([0.5, 0.3, 0.04]), 0.1).tolist() == [True, True, False]


def test_temperature_sharpens_and_flattens():
    cold = distribution(LOGITS, SamplingParams(temperature=0.5))
    hot = distribution(LOGITS, SamplingParams(temperature=2.0))
    assert cold[0] > 0.665 > hot[0]
    assert entropy_bits(cold) < entropy_bits(hot)


def test_greedy_is_one_hot_and_tiny_temperature_is_finite():
    assert distribution(LOGITS, SamplingParams(temperature=0)).tolist() == [1.0, 0.0, 0.0]
    p = distribution(LOGITS, SamplingParams(temperature=1e-30))
    assert torch.isfinite(p).all() and p[0] == 1.0


def test_draw_lands_where_u_falls_on_the_cumulative_axis():
    probs = torch.tensor([0.2, 0.5, 0.3])  # sorted: 0.5 (id 1), 0.3 (id 2), 0.2 (id 0)
    g = make_generator(0)
    for _ in range(200):
        d = draw(probs, g)
        if d.u < 0.5:
            assert d.id == 1 and d.cumulative_before == 0
        elif d.u < 0.8:
            assert d.id == 2 and d.cumulative_before == pytest.approx(0.5)
        else:
            assert d.id == 0 and d.cumulative_before == pytest.approx(0.8)


def test_draw_frequencies_follow_the_probabilities():
    probs = torch.tensor([0.1, 0.6, 0.3])
    g = make_generator(123)
    counts = torch.zeros(3)
    for _ in range(4000):
        counts[draw(probs, g).id] += 1
    assert (counts / 4000 - probs).abs().max() < 0.03


def test_zero_probability_tokens_are_never_drawn():
    probs = distribution(torch.tensor([5.0, 4.0, -1.0, -2.0]), SamplingParams(temperature=1.0, top_k=2))
    g = make_generator(5)
    assert {draw(probs, g).id for _ in range(500)} <= {0, 1}


def test_invalid_params_are_refused_with_the_limit():
    refused = [({"temperature": -0.1}, "temperature"), ({"top_p": 0}, "top_p"), ({"top_p": 1.5}, "top_p"),
               ({"top_k": -1}, "top_k"), ({"min_p": 1.0}, "min_p"),
               ({"temperature": math.nan}, "temperature")]
    for kwargs, word in refused:
        with pytest.raises(ValueError, match=word):
            SamplingParams(**kwargs)


def test_prediction_table_keeps_every_intermediate():
    table = predict(LOGITS, SamplingParams(temperature=2.0, top_k=2), k=3)
    assert [r.id for r in table.rows] == [0, 1, 2]
    assert [r.scaled for r in table.rows] == [1.0, 0.5, 0.0]
    assert table.rows[2].prob == 0 and table.candidates == 2
    assert table.rows[1].cumulative == pytest.approx(1.0)
    assert table.entropy == pytest.approx(entropy_bits(torch.tensor([r.prob for r in table.rows])))
