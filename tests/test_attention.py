"""Attention explorer: library and API, checked against the real model's trace and by hand."""

from __future__ import annotations

import pytest
import torch

from prediction_machine.inference.tokenizer import Token
from prediction_machine.training import attention, attention_heads

EXAMPLE = "The animal didn't cross the street because it was too tired."
SPLIT = "Unbelievably, the chrysanthemums outlasted the thermostat."


@pytest.fixture(scope="module")
def example(lm) -> attention.Explained:
    return attention.explain(lm, EXAMPLE)


def tok(text: str, start: int = 0) -> Token:
    raw = text.encode()
    return Token(0, text, raw, start, start + len(text))


# ----------------------------------------------------------------------------- words, by hand


def test_word_rule_by_hand():
    pieces = [
        "The",
        " animal",
        " didn",
        "'t",
        " (",
        "un",
        "belie",
        "v",
        "ably",
        ")",
        ".",
        "\n",
        "1",
        "2",
        "3",
    ]
    words = attention.group_words([tok(p) for p in pieces])
    assert [w.tokens for w in words] == [[0], [1], [2, 3], [4], [5, 6, 7, 8], [9], [10], [11], [12, 13, 14]]
    assert [w.text for w in words][:3] == ["The", " animal", " didn't"]


def test_word_matrix_by_hand():
    # tokens [A, b1, b2]; words A=[0], B=[1, 2]; the worked example in word_matrix's docstring
    att = torch.tensor([[1.0, 0, 0], [0.6, 0.4, 0], [0.2, 0.3, 0.5]])
    words = attention.group_words([tok("A"), tok(" b"), tok("c")])
    assert [w.tokens for w in words] == [[0], [1, 2]]
    got = attention.word_matrix(att, words)
    assert torch.allclose(got, torch.tensor([[1.0, 0.0], [0.4, 0.6]]))


def test_word_view_on_split_words(lm):
    e = attention.explain(lm, SPLIT)
    split = [w for w in e.words if len(w.tokens) > 1]
    assert [w.text for w in split] == ["Unbelievably", " chrysanthemums", " outlasted"]
    word_att = e.word_attention()  # (L, H, W, W)
    W = len(e.words)
    assert word_att.shape[-2:] == (W, W)
    # rows still sum to 1 and no word reads a later word
    assert torch.allclose(word_att.sum(-1), torch.ones(word_att.shape[:-1]), atol=1e-5)
    assert word_att.triu(1).abs().max() == 0
    # one cell, by hand: query word " chrysanthemums", key word "Unbelievably", layer 5 head 2
    qw, kw = e.words[3], e.words[0]
    a = e.attention[5, 2]  # (T, T)
    by_hand = sum(sum(float(a[q, k]) for k in kw.tokens) for q in qw.tokens) / len(qw.tokens)
    assert word_att[5, 2, 3, 0].item() == pytest.approx(by_hand, abs=1e-6)


# ----------------------------------------------------------------------------- traced weights


def test_rows_sum_to_one_and_causal(lm, example):
    e = example
    att = e.attention  # (L, H, T, T)
    T = len(e.tokens)
    assert att.shape == (lm.config.n_layers, lm.config.n_heads, T, T)
    assert torch.allclose(att.sum(-1), torch.ones(att.shape[:-1]), atol=1e-5)
    assert att.triu(1).abs().max() == 0  # nothing reads the future
    assert att[:, :, 0, 0].eq(1).all()  # the first token can only read itself


@pytest.mark.parametrize("layer,head", [(0, 0), (13, 8), (29, 4)])
def test_breakdown_reproduces_traced_weights(lm, example, layer, head):
    e = example
    for q in range(len(e.tokens)):
        b = attention.score_breakdown(lm.model, e.trace, layer, head, q)
        assert b.max_abs_diff < 1e-5
        assert b.allowed == [k <= q for k in range(len(e.tokens))]
        assert b.kv_head == head // 3
        # the softmax of the scaled scores over the allowed keys, by hand
        s = torch.tensor(b.scaled[: q + 1])
        assert torch.allclose(
            torch.tensor(b.weights[: q + 1]), torch.exp(s - s.max()) / torch.exp(s - s.max()).sum(), atol=1e-6
        )
        assert b.scaled[0] == pytest.approx(b.dots[0] / 8.0, rel=1e-6)  # head_dim 64


def test_breakdown_catches_a_wrong_layer_input(lm, example):
    """The check can fail: the q/k of layer 3 computed from layer 1's input do not reproduce it."""
    e = example
    wrong = attention.tracing.Trace(
        e.trace.ids,
        e.trace.embeddings,
        e.trace.attention,
        e.trace.residuals[[0, 0, 0] + list(range(3, 30))],
        e.trace.logits,
    )
    assert attention.score_breakdown(lm.model, wrong, 3, 0, 10).max_abs_diff > 1e-3


def test_downsample_keeps_short_maps_and_averages_blocks():
    att = torch.rand(2, 3, 5, 5)
    assert attention.downsample(att, 16) is att
    big = torch.arange(16.0).view(4, 4)
    assert torch.allclose(attention.downsample(big, 2), torch.tensor([[2.5, 4.5], [10.5, 12.5]]))


def test_prominent_heads_match_their_measurements(client, example):
    # the API computes them once per process; the same objects' numbers are checked here
    data = client.get("/api/attention/examples").json()
    found = {p["kind"]: attention_heads.Prominent(**p) for p in data["prominent"]}
    assert set(found) == {"previous_token", "first_token", "induction", "referent"}
    e = example
    p = found["previous_token"]
    T = len(e.tokens)
    here = e.attention[p.layer, p.head, torch.arange(2, T), torch.arange(1, T - 1)].mean().item()
    assert here > 2 * p.baseline  # it also does it on this one sentence
    assert str(round(100 * p.score)) + "%" in p.caption
    r = found["referent"]
    assert e.attention[r.layer, r.head, r.query, 1].item() == pytest.approx(r.details["to_animal"], abs=1e-6)
    assert r.details["max_diff_in_wide_version"] < 1e-5  # causal: "it" cannot see the last word


def test_mean_view_is_torch_mean_over_the_right_dims():
    att = torch.rand(4, 3, 5, 5)  # (L, H, T, T)
    v = attention.mean_view(att, [2, 0], [1])
    assert torch.equal(v.maps, att[[2, 0]][:, [1]])  # (L', H', T, T)
    assert torch.allclose(
        v.head_mean, torch.stack([att[2].mean(0), att[0].mean(0)])
    )  # all heads of each layer
    assert torch.allclose(v.layer_mean, att[:, 1].mean(0, keepdim=True))  # all layers of each head
    assert torch.allclose(v.mean, att.mean((0, 1)))


def test_views_token_word_grid_and_breakdown(lm, example):
    e = example
    v = attention.views(lm, EXAMPLE, [13], [8, 2], ("token", "word"), grid=4, breakdown=(13, 8, 5))
    assert torch.equal(v.token.maps, e.attention[[13]][:, [8, 2]])
    assert torch.allclose(v.token.mean, e.attention.mean((0, 1)))
    word = attention.word_matrix(e.attention, e.words)  # (L, H, W, W)
    assert torch.allclose(v.word.layer_mean, word[:, [8, 2]].mean(0))
    assert v.grid.shape == (lm.config.n_layers, lm.config.n_heads, 4, 4)
    assert v.breakdown.query == 5 and v.breakdown.max_abs_diff < 1e-5
    only = attention.views(lm, EXAMPLE, [0], [0])
    assert only.word is None and only.grid is None and only.breakdown is None


# ----------------------------------------------------------------------------- API


def test_api_weights_match_the_trace(client, example):
    r = client.post("/api/attention", json={"text": EXAMPLE, "layers": [13], "heads": [8, 2], "view": "both"})
    assert r.status_code == 200, r.text
    d = r.json()
    maps = torch.tensor(d["attention"]["maps"])  # (1, 2, T, T)
    e = example
    assert torch.allclose(maps, e.attention[[13]][:, [8, 2]], atol=6e-5)
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-3)
    assert maps.triu(1).abs().max() == 0
    words = torch.tensor(d["word_attention"]["maps"])
    assert words.shape[-1] == len(d["words"]) == 12  # "didn't" is one word of two tokens
    assert torch.allclose(words, attention.word_matrix(e.attention[[13]][:, [8, 2]], e.words), atol=6e-5)
    assert torch.allclose(words.sum(-1), torch.ones(words.shape[:-1]), atol=1e-3)
    assert d["words"][2] == {"text": " didn't", "tokens": [2, 3], "start": 10, "end": 17}
    assert torch.allclose(
        torch.tensor(d["attention"]["head_mean"]), e.attention[13].mean(0, keepdim=True), atol=6e-5
    )
    assert torch.allclose(torch.tensor(d["attention"]["mean"]), e.attention.mean((0, 1)), atol=6e-5)


def test_api_grid_and_breakdown(client):
    r = client.post(
        "/api/attention",
        json={
            "text": EXAMPLE,
            "layers": [0],
            "heads": [0],
            "grid": True,
            "breakdown": {"layer": 13, "head": 8, "query": 8},
        },
    )
    d = r.json()
    assert len(d["grid"]["maps"]) == 30 and len(d["grid"]["maps"][0]) == 9 and d["grid"]["size"] == 13
    b = d["breakdown"]
    assert b["max_abs_diff"] < 1e-5 and b["head_dim"] == 64 and b["kv_head"] == 2
    assert [k["allowed"] for k in b["keys"]] == [k <= 8 for k in range(13)]
    assert sum(k["weight"] for k in b["keys"]) == pytest.approx(1, abs=1e-4)


def test_api_long_text_grid_is_downsampled(client):
    text = " ".join(["word"] * 40)
    d = client.post("/api/attention", json={"text": text, "layers": [1], "heads": [0], "grid": True}).json()
    assert d["grid"]["size"] == 16 and d["grid"]["downsampled"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"text": ""}, "text"),
        ({"text": "word " * 120}, "text"),
        ({"text": "hi", "layers": [30]}, "layers"),
        ({"text": "hi", "heads": [9]}, "heads"),
        ({"text": "hi", "heads": [-1]}, "heads"),
        ({"text": "hi", "layers": [1, 1]}, "layers"),
        ({"text": "hi", "view": "letters"}, "view"),
        ({"text": "hi", "breakdown": {"layer": 0, "head": 0, "query": 4}}, "breakdown.query"),
        ({"text": "hi", "breakdown": {"layer": 0, "head": 12, "query": 0}}, "breakdown.head"),
        ({"text": "word " * 60}, "layers"),  # all 270 maps of 60 tokens: over the payload bound
        ({"text": "hi", "extra": 1}, "extra"),
    ],
)
def test_api_bad_input_is_a_clear_422(client, body, field):
    r = client.post("/api/attention", json=body)
    assert r.status_code == 422
    assert r.json()["error"].startswith(field)


def test_api_examples_are_cached(client):
    a = client.get("/api/attention/examples").json()
    b = client.get("/api/attention/examples").json()
    assert a == b and a["examples"][0]["text"] == EXAMPLE
    assert {p["kind"] for p in a["prominent"]} == {"previous_token", "first_token", "induction", "referent"}
