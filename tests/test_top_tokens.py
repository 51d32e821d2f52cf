"""top_tokens: the block-first search finds the same top k as torch.topk, and counts non-zero entries."""

import pytest
import torch

from prediction_machine.inference import top_tokens
from prediction_machine.inference.top_tokens import nonzero_count, top_ids


def test_the_worked_example_in_the_docstring(monkeypatch):
    monkeypatch.setattr(top_tokens, "BLOCK", 2)
    row = torch.tensor([[1.0, 9.0, 4.0, 3.0, 8.0, 0.0]])
    assert top_ids(row, 2).tolist() == [[1, 4]]


@pytest.mark.parametrize("vocab", [49152, 50000, 268, 1000])
@pytest.mark.parametrize("k", [1, 10, 64])
def test_the_same_scores_as_topk_best_first(vocab, k):
    g = torch.Generator().manual_seed(vocab + k)
    scores = torch.randn(16, vocab, generator=g) * 4  # (16, V)
    scores[3, :] = scores[3, :].sort().values  # every best score in the last block
    scores[5, 7::97] = 50.0  # many ties at the top, spread over blocks
    ids = top_ids(scores, k)  # (16, k)
    want = scores.topk(min(k, vocab), dim=-1).values
    assert torch.equal(scores.gather(-1, ids), want)
    assert all(len(set(r)) == len(r) for r in ids.tolist())  # no token twice


def test_one_row_alone_gets_what_it_gets_in_a_batch():
    scores = torch.randn(8, 49152, generator=torch.Generator().manual_seed(1))  # (8, V)
    together = top_ids(scores, 64)
    for i in range(8):
        assert torch.equal(top_ids(scores[i : i + 1], 64)[0], together[i])


def test_nonzero_count_counts_probabilities_above_zero():
    probs = torch.softmax(torch.tensor([[0.0, 1.0, -200.0], [5.0, 5.0, 5.0]]) * 1.0, -1)
    probs[0, 2] = 0.0
    assert nonzero_count(probs).tolist() == torch.count_nonzero(probs, dim=-1).tolist() == [2, 3]
    big = (torch.rand(2, 49152, generator=torch.Generator().manual_seed(2)) > 0.3).float()  # (2, V)
    assert nonzero_count(big).tolist() == torch.count_nonzero(big, dim=-1).tolist()
