"""Batched sampling and prediction: a row of a (B, V) batch gets exactly what the page's code gives it.

The batcher samples every student's next token in one go (sampling.distributions,
sampling.draw_rows, prediction.predict_rows, generation.choose). The page's "view code" links
open the one-row code (sampling.draw, prediction.predict), which is separate and simpler. These
tests pin the batched functions to the one-row ones, bit for bit, for a fixed set of seeds and
settings, as tests/test_fastpath.py holds the fast decoder to the textbook one.
"""

import pytest
import torch
from test_batching import run_together
from test_transformer import tiny_model

from prediction_machine.engine.batching import Batcher
from prediction_machine.inference.generation import choose, generate
from prediction_machine.inference.prediction import predict, predict_rows
from prediction_machine.inference.sampling import (
    SamplingParams,
    distribution,
    distributions,
    draw,
    draw_rows,
    make_generator,
)

SETTINGS = [
    SamplingParams(temperature=0),
    SamplingParams(temperature=0.7),
    SamplingParams(temperature=1.3, top_p=0.9),
    SamplingParams(temperature=1.0, top_k=40),
    SamplingParams(temperature=0.8, min_p=0.05),
    SamplingParams(temperature=2.0, top_k=200, top_p=0.95, min_p=0.01),
    SamplingParams(temperature=0.7),  # repeated: shares a group with row 1
]
SEEDS = [0, 1, 7, 1234, 2**40 + 3]


def logits_batch(seed: int, vocab: int = 49152) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(SETTINGS), vocab, generator=g) * 3  # (B, V), peaky enough for top-p to cut


def test_distributions_equal_one_row_at_a_time():
    for seed in SEEDS:
        logits = logits_batch(seed)
        together = distributions(logits, SETTINGS)  # (B, V)
        for i, p in enumerate(SETTINGS):
            assert torch.equal(together[i], distribution(logits[i], p)), (seed, p)


def test_draw_rows_equal_draw_with_each_rows_own_generator():
    for seed in SEEDS:
        logits = logits_batch(seed)
        probs = distributions(logits, SETTINGS)
        gens = [None if p.greedy else make_generator(seed + i) for i, p in enumerate(SETTINGS)]
        twins = [None if p.greedy else make_generator(seed + i) for i, p in enumerate(SETTINGS)]
        for _ in range(3):  # the generators advance: later draws must still agree
            together = draw_rows(probs, gens)
            alone = [draw(probs[i], twins[i]) for i in range(len(SETTINGS))]
            assert together == alone


def test_tied_probabilities_go_to_the_lower_token_id_in_both_draws():
    # Probabilities rounded to a few levels: long runs of exact ties, across the first look's edge too.
    g = torch.Generator().manual_seed(2)
    levels = torch.randint(1, 6, (5, 3000), generator=g).float() ** 3  # (5, V): five distinct values
    probs = levels / levels.sum(-1, keepdim=True)
    for seed in range(40):
        gens = [make_generator(seed * 10 + i) for i in range(5)]
        twins = [make_generator(seed * 10 + i) for i in range(5)]
        order = probs.topk(64, dim=-1).indices  # (5, 64): ties in whatever order topk leaves them
        assert draw_rows(probs, gens, order) == [draw(probs[i], twins[i]) for i in range(5)]


def test_choose_gives_each_row_what_the_page_code_gives_it():
    # generation.choose (the batcher's step) against sampling.draw and prediction.predict alone.
    logits = logits_batch(3)
    gens = [None if p.greedy else make_generator(70 + i) for i, p in enumerate(SETTINGS)]
    twins = [None if p.greedy else make_generator(70 + i) for i, p in enumerate(SETTINGS)]
    chosen = choose(logits, SETTINGS, gens, [10] * len(SETTINGS))
    for i, p in enumerate(SETTINGS):
        probs = distribution(logits[i], p)
        assert chosen[i].draw == draw(probs, twins[i]), p
        assert chosen[i].prediction == predict(logits[i], p, 10), p


def test_a_draw_beyond_the_first_look_lines_up_the_whole_vocabulary():
    flat = torch.full((1, 1000), 1 / 1000)  # (1, V): most draws land past the first 64 tokens
    gen = make_generator(3)
    far = [d for d in (draw_rows(flat, [gen])[0] for _ in range(20)) if d.u > 0.1]
    assert far  # u > 0.1 lands beyond the first 64 slices of 0.001
    for d in far:
        assert d.cumulative_before <= d.u < d.cumulative_before + d.prob + 1e-6
        assert d.cumulative_before > 0.064


def test_predict_rows_equal_predict_and_skip_rows_that_ask_for_none():
    logits = logits_batch(11)
    probs = distributions(logits, SETTINGS)
    ks = [10, 0, 3, 10, 50, 1, 10]
    tables = predict_rows(logits, SETTINGS, ks, probs)
    for i, (p, k) in enumerate(zip(SETTINGS, ks, strict=True)):
        if k == 0:
            assert tables[i] is None  # top_n=0: no table is built
        else:
            assert tables[i] == predict(logits[i], p, k, probs[i])
            assert len(tables[i].rows) == k


def test_choose_reports_both_probabilities():
    # (2, V): a near tie, then the docstring example
    logits = torch.tensor([[25.33, 25.24, 0.0], [2.0, 1.0, 0.0]])
    greedy, warm = SamplingParams(temperature=0), SamplingParams(temperature=1.0)
    a, b = choose(logits, [greedy, warm], [None, make_generator(0)], [3, 3])
    assert a.draw.id == 0 and a.draw.prob == 1.0  # what the draw used: certain at temperature 0
    assert abs(a.model_prob - 0.5225) < 1e-3  # what the model believed: almost a coin toss
    assert [r.model_prob for r in a.prediction.rows][:2] == [a.model_prob, a.prediction.rows[1].model_prob]
    assert a.prediction.rows[1].prob == 0.0 and a.prediction.rows[1].model_prob > 0.47
    assert b.model_prob == b.draw.prob  # temperature 1 and no filter: the two are the same number
    assert b.prediction.rows[0].raw_prob == b.prediction.rows[0].model_prob  # the older name still reads


def test_choose_in_a_batch_equals_choose_alone():
    # Bit for bit, entropies included: each row's logs come from the same formula alone or in
    # a batch (log_softmax without a filter, the clamped log with one), and every row sum is
    # row_sums, so no kernel's reduction order can tell the two apart.
    for seed in SEEDS:
        logits = logits_batch(seed, vocab=4096)
        gens = [None if p.greedy else make_generator(seed * 7 + i) for i, p in enumerate(SETTINGS)]
        twins = [None if p.greedy else make_generator(seed * 7 + i) for i, p in enumerate(SETTINGS)]
        together = choose(logits, SETTINGS, gens, [5] * len(SETTINGS))
        for i, p in enumerate(SETTINGS):
            assert together[i] == choose(logits[i : i + 1], [p], [twins[i]], [5])[0]


def test_batcher_tokens_equal_generate_for_every_setting_and_seed():
    model = tiny_model(21)
    prompts = [[1, 2, 3], [9] * 7, list(range(30, 52)), [400]]
    jobs = [(prompts[n % len(prompts)], p, 12, set(), SEEDS[n % len(SEEDS)], 5)
            for n, p in enumerate(SETTINGS)]
    together = run_together(Batcher(model), jobs)
    for (prompt, p, n_new, stop, seed, top_n), steps in zip(jobs, together, strict=True):
        alone = list(generate(model, prompt, p, n_new, stop, seed=seed, top_n=top_n))
        assert [s.id for s in steps] == [s.id for s in alone], p
        assert [s.draw.u for s in steps] == [s.draw.u for s in alone]  # each row's own generator, in step
        # The logits themselves may differ in the last bits (a batched matrix product sums in
        # another order than a lone one), so the probabilities agree to float precision.
        assert [s.model_prob for s in steps] == pytest.approx([s.model_prob for s in alone], rel=1e-4)
        before = [s.draw.cumulative_before for s in alone]
        assert [s.draw.cumulative_before for s in steps] == pytest.approx(before, rel=1e-4, abs=1e-7)


def test_top_p_looks_further_only_for_the_rows_that_need_it_and_gets_the_full_sorts_answer():
    from prediction_machine.inference import sampling

    g = torch.Generator().manual_seed(5)
    flat = torch.softmax(torch.randn(2, 5000, generator=g) * 0.1, -1)  # (2, V): the nucleus needs most tokens
    middle = torch.softmax(torch.randn(2, 5000, generator=g) * 3, -1)  # (2, V): hundreds of tokens
    peaky = torch.softmax(torch.randn(2, 5000, generator=g) * 6, -1)  # (2, V): a few dozen tokens reach p
    mixed = torch.cat([peaky[:1], flat[:1], middle[:1], peaky[1:]])  # (4, V): each row ends at another look
    for probs in (flat, middle, peaky, mixed):
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # (rows, V)
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, before < 0.9)
        assert torch.equal(sampling.top_p_mask(probs, 0.9), keep)  # the full sort's answer, either way
        for row in range(len(probs)):  # and a row alone gets what it gets in the batch
            assert torch.equal(sampling.top_p_mask(probs[row], 0.9), keep[row])
    first, second = sampling.TOP_P_LOOKS
    sizes = [int(sampling.top_p_mask(probs, 0.9).sum(-1).max()) for probs in (peaky, middle, flat)]
    assert sizes[0] <= first < sizes[1] <= second < sizes[2]  # each look is really needed by one kind


@pytest.mark.parametrize("vocab", [49152, 50000, 1000, 7])
def test_row_sums_give_a_row_the_same_bits_alone_and_in_any_batch(vocab):
    from prediction_machine.inference.sampling import row_sums

    x = torch.rand(9, vocab, generator=torch.Generator().manual_seed(vocab)) ** 8  # (9, V): many tiny numbers
    whole = row_sums(x)  # (9, 1)
    assert torch.allclose(whole[:, 0], x.double().sum(-1).float(), rtol=1e-6)  # checked in float64
    for i in range(9):
        assert torch.equal(row_sums(x[i]), whole[i]) and torch.equal(row_sums(x[i : i + 1]), whole[i : i + 1])
    assert torch.equal(row_sums(x[2:7]), whole[2:7])


def test_entropy_from_the_logits_equals_entropy_from_the_probabilities():
    # The table's entropy takes no log of the 49k probabilities: log p = (scaled - max) + log(p_max).
    from prediction_machine.inference.prediction import entropy_bits, scaled_logits

    logits = logits_batch(4)
    for p in SETTINGS:
        probs = distribution(logits, p)  # (B, V)
        fast = entropy_bits(probs, scaled_logits(logits, [p] * len(logits)))
        assert fast == pytest.approx(entropy_bits(probs), abs=1e-4), p
        for i in range(len(logits)):  # a row alone has the same bits as in the batch
            assert entropy_bits(probs[i], scaled_logits(logits[i : i + 1], [p])[0]) == fast[i]
    half = torch.tensor([0.5, 0.5])
    assert entropy_bits(half, torch.log(half)) == pytest.approx(1.0)
    # A masked logit (-inf, so p = 0) adds nothing instead of 0 x inf = nan.
    masked = torch.tensor([1.0, 1.0, float("-inf")])
    assert entropy_bits(torch.softmax(masked, -1), masked) == pytest.approx(1.0)


def test_entropy_read_at_the_largest_logit_equals_the_full_look_even_when_a_filter_drops_a_tie():
    from prediction_machine.inference.prediction import entropy_bits, scaled_logits

    logits = torch.tensor([[3.0, 1.0, 3.0, 0.5, -1.0]])  # tokens 0 and 2 tie for the largest logit
    for p in (SamplingParams(temperature=0.7), SamplingParams(temperature=0.7, top_p=0.2),
              SamplingParams(temperature=0)):  # top-p 0.2 keeps one of the two; greedy too
        probs, scaled = distribution(logits, p), scaled_logits(logits, [p])
        full = entropy_bits(probs, scaled)
        for tied in (0, 2):  # either tied id may be the caller's best: the same bits
            assert entropy_bits(probs, scaled, torch.tensor([[tied]])) == full, (p, tied)


def test_one_shared_top_k_gives_the_same_draw_and_table_as_each_lining_up_its_own():
    logits = logits_batch(8)
    probs = distributions(logits, SETTINGS)
    order = logits.topk(64, dim=-1).indices  # (B, 64): what choose shares between the draw and the table
    gens = [None if p.greedy else make_generator(40 + i) for i, p in enumerate(SETTINGS)]
    twins = [None if p.greedy else make_generator(40 + i) for i, p in enumerate(SETTINGS)]
    assert draw_rows(probs, gens, order) == draw_rows(probs, twins)
    ks = [10] * len(SETTINGS)
    assert predict_rows(logits, SETTINGS, ks, probs, order=order) == predict_rows(logits, SETTINGS, ks, probs)


def test_a_distribution_that_is_not_a_number_still_draws_a_token_instead_of_failing():
    nan = torch.full((2, 300), float("nan"))  # (2, V): what a broken checkpoint's logits give
    draws = draw_rows(nan, [make_generator(1), make_generator(2)], nan.topk(64, dim=-1).indices)
    assert all(0 <= d.id < 300 for d in draws)
    assert all(0 <= d.id < 300 for d in draw_rows(nan, [make_generator(1), make_generator(2)]))


