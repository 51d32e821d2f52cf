"""The scalar engine, the MLP and the tensor MLP against PyTorch autograd (values and gradients to 1e-6)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from prediction_machine.training.backprop import datasets, nn
from prediction_machine.training.backprop.engine import Value, export_graph
from prediction_machine.training.backprop.neuron import neuron_step
from prediction_machine.training.backprop.playground import PlaygroundConfig, Session
from prediction_machine.training.backprop.vectorized import TensorMLP

TOL = 1e-6

# ----------------------------------------------------------------------------- random expressions

UNARY = {
    "tanh": (lambda v: v.tanh(), torch.tanh),
    "relu": (lambda v: v.relu(), torch.relu),
    "sigmoid": (lambda v: v.sigmoid(), torch.sigmoid),
    "exp": (lambda v: (v * 0.3).exp(), lambda t: torch.exp(t * 0.3)),
    "log": (lambda v: (v * v + 1.0).log(), lambda t: torch.log(t * t + 1.0)),
    "softplus": (lambda v: v.softplus(), torch.nn.functional.softplus),
    "square": (lambda v: v**2, lambda t: t**2),
    "cube": (lambda v: v**3, lambda t: t**3),
    "neg": (lambda v: -v, lambda t: -t),
}
BINARY = {
    "+": (lambda a, b: a + b, lambda a, b: a + b),
    "-": (lambda a, b: a - b, lambda a, b: a - b),
    "*": (lambda a, b: a * b, lambda a, b: a * b),
    "/": (lambda a, b: a / (b * b + 0.5), lambda a, b: a / (b * b + 0.5)),
    "const": (lambda a, b: 2.0 - a * 0.5 + b / 3.0, lambda a, b: 2.0 - a * 0.5 + b / 3.0),
}


def random_expression(rng: random.Random, n_leaves: int = 4, n_ops: int = 14):
    """The same random expression built twice: once from Values, once from torch scalars.

    Intermediate results go back into the pool, so many nodes are reused several times.
    """
    data = [rng.uniform(-2, 2) for _ in range(n_leaves)]
    ours = [Value(x) for x in data]
    theirs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in data]
    pool_o, pool_t = list(ours), list(theirs)
    for _ in range(n_ops):
        if rng.random() < 0.4:
            f_o, f_t = UNARY[rng.choice(list(UNARY))]
            i = rng.randrange(len(pool_o))
            pool_o.append(f_o(pool_o[i]))
            pool_t.append(f_t(pool_t[i]))
        else:
            f_o, f_t = BINARY[rng.choice(list(BINARY))]
            i, j = rng.randrange(len(pool_o)), rng.randrange(len(pool_o))
            pool_o.append(f_o(pool_o[i], pool_o[j]))
            pool_t.append(f_t(pool_t[i], pool_t[j]))
    # Sum the last few so the output depends on more than one chain.
    out_o = pool_o[-1] + pool_o[-2] * 0.5 + pool_o[-3].tanh()
    out_t = pool_t[-1] + pool_t[-2] * 0.5 + torch.tanh(pool_t[-3])
    return ours, theirs, out_o, out_t


@pytest.mark.parametrize("seed", range(60))
def test_random_expressions_match_torch(seed):
    rng = random.Random(seed)
    ours, theirs, out_o, out_t = random_expression(rng)
    if not math.isfinite(out_o.data):
        pytest.skip("this random expression overflowed")
    out_o.backward()
    out_t.backward()
    assert out_o.data == pytest.approx(out_t.item(), rel=TOL, abs=TOL)
    for v, t in zip(ours, theirs, strict=True):
        expected = t.grad.item() if t.grad is not None else 0.0
        assert v.grad == pytest.approx(expected, rel=TOL, abs=TOL)


def test_hand_worked_example_and_reuse():
    a, b = Value(2.0), Value(3.0)
    loss = a * b + a  # a is used twice: dL/da = b + 1
    loss.backward()
    assert (a.grad, b.grad) == (4.0, 2.0)
    x = Value(3.0)
    y = x * x * x  # the same node three times: 3x^2 = 27
    y.backward()
    assert x.grad == 27.0


def test_backward_twice_does_not_double_count():
    x, w = Value(0.7), Value(-1.3)
    out = (x * w).tanh() * x
    out.backward()
    first = (x.grad, w.grad)
    out.backward()
    assert (x.grad, w.grad) == first
    assert first != (0.0, 0.0)


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0


def test_graph_export():
    x1, w1 = Value(2.0, label="x1"), Value(-0.5, label="w1")
    m = x1 * w1
    loss = m * m  # m reused: two edges from m into loss
    loss.backward()
    g = export_graph(loss)
    labels = [n.label for n in g.nodes]
    assert set(labels) >= {"x1", "w1"} and len(g.nodes) == 4
    ids = {n.label: n.id for n in g.nodes}
    into_loss = [e for e in g.edges if e.target == g.nodes[-1].id]
    assert len(into_loss) == 2 and {e.slot for e in into_loss} == {0, 1}
    assert all(e.local == pytest.approx(m.data) for e in into_loss)
    assert into_loss[-1].grad_after == pytest.approx(2 * m.data)  # the second edge completes m's gradient
    w_edge = next(e for e in g.edges if e.source == ids["w1"])
    assert w_edge.local == 2.0 and w_edge.contribution == pytest.approx(w1.grad)
    # Forward order: every edge goes from an earlier node to a later one.
    assert all(e.source < e.target for e in g.edges)
    d = g.to_dict()
    assert set(d) == {"nodes", "edges"} and {"data", "grad"} <= set(d["nodes"][0])


# ----------------------------------------------------------------------------- networks


def torch_mlp_loss(params, X, y, activation, l2):
    """An independent torch implementation: nn.functional, not our formula."""
    act = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}[activation]
    tensors = [
        (
            torch.tensor(W, dtype=torch.float64, requires_grad=True),
            torch.tensor(b, dtype=torch.float64, requires_grad=True),
        )
        for W, b in params
    ]
    h = torch.tensor(X, dtype=torch.float64)
    for i, (W, b) in enumerate(tensors):
        h = torch.nn.functional.linear(h, W, b)
        if i < len(tensors) - 1:
            h = act(h)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(h[:, 0], torch.tensor(y, dtype=torch.float64))
    loss = loss + l2 * sum((W**2).sum() for W, _ in tensors)
    loss.backward()
    return loss.item(), tensors


@pytest.mark.parametrize("seed", range(12))
def test_scalar_mlp_matches_torch(seed):
    rng = random.Random(seed)
    activation = nn.ACTIVATIONS[seed % 3]
    sizes = [2] + [rng.randint(1, 5) for _ in range(rng.randint(0, 3))] + [1]
    model = nn.MLP(sizes, activation, seed=seed)
    X = [[rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)] for _ in range(7)]
    y = [float(rng.random() < 0.5) for _ in range(7)]
    l2 = rng.choice([0.0, 0.01, 0.3])
    loss = nn.loss(model, X, y, l2)
    loss.backward()
    expected, tensors = torch_mlp_loss(model.export(), X, y, activation, l2)
    assert loss.data == pytest.approx(expected, rel=TOL, abs=TOL)
    for layer, (W, b) in zip(model.layers, tensors, strict=True):
        for n, neuron in enumerate(layer.neurons):
            for k, w in enumerate(neuron.w):
                assert w.grad == pytest.approx(W.grad[n, k].item(), rel=TOL, abs=TOL)
            assert neuron.b.grad == pytest.approx(b.grad[n].item(), rel=TOL, abs=TOL)


@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
def test_vectorized_agrees_with_scalar(activation):
    X, y = datasets.make("moons", 16, 0.1, seed=3)
    sizes = [2, 4, 3, 1]
    scalar = nn.MLP(sizes, activation, seed=7)
    fast = TensorMLP(sizes, activation, seed=7)
    loss = nn.loss(scalar, X.tolist(), y.tolist(), 0.05)
    loss.backward()
    total, _ = fast.gradients(torch.tensor(X), torch.tensor(y), 0.05)
    assert total == pytest.approx(loss.data, rel=1e-9, abs=1e-9)
    for layer, (W, b) in zip(scalar.layers, fast.params, strict=True):
        ours = [w.grad for n in layer.neurons for w in n.w]
        assert ours == pytest.approx(W.grad.reshape(-1).tolist(), rel=1e-9, abs=1e-9)
        assert [n.b.grad for n in layer.neurons] == pytest.approx(b.grad.tolist(), rel=1e-9, abs=1e-9)
    # One update each, then the losses still agree: the two paths train identically.
    for p in scalar.parameters():
        p.data -= 0.5 * p.grad
    fast.sgd_step(0.5)
    after = nn.loss(scalar, X.tolist(), y.tolist(), 0.05).data
    assert fast.loss(torch.tensor(X), torch.tensor(y), 0.05)[0].item() == pytest.approx(
        after, rel=1e-9, abs=1e-9
    )


def test_neuron_step_matches_torch_and_hand_example():
    step = neuron_step(1.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.1, "tanh")
    y = math.tanh(0.5)
    assert step.prediction == pytest.approx(y) and step.loss == pytest.approx((y - 1) ** 2)
    assert step.updates[0].grad == pytest.approx(2 * (y - 1) * (1 - y * y))  # dL/dw1 by hand
    for activation in nn.ACTIVATIONS:
        x1, x2, w1, w2, b, t, lr = 0.8, -1.2, 0.3, 0.9, -0.2, 0.5, 0.7
        s = neuron_step(x1, x2, w1, w2, b, t, lr, activation)
        W = torch.tensor([w1, w2, b], dtype=torch.float64, requires_grad=True)
        out = getattr(torch, activation)(x1 * W[0] + x2 * W[1] + W[2])
        loss = (out - t) ** 2
        loss.backward()
        assert [u.grad for u in s.updates] == pytest.approx(W.grad.tolist(), abs=TOL)
        assert [u.after for u in s.updates] == pytest.approx((W - lr * W.grad).tolist(), abs=TOL)
        if activation != "relu":  # (with these numbers the ReLU is off: zero gradient, no change)
            assert s.new_loss < s.loss  # a small enough step goes downhill


def test_datasets_are_seeded_and_bounded():
    for name in datasets.GENERATORS:
        X, y = datasets.make(name, 101, 0.2, seed=5)
        X2, y2 = datasets.make(name, 101, 0.2, seed=5)
        assert X.shape == (101, 2) and (X == X2).all() and (y == y2).all()
        assert abs(X).max() <= datasets.EXTENT and set(y.tolist()) == {0.0, 1.0}
        assert not (X == datasets.make(name, 101, 0.2, seed=6)[0]).all()
    with pytest.raises(ValueError):
        datasets.make("swiss-roll")


def test_session_learns_resets_to_same_weights_and_pauses_on_nan():
    s = Session(PlaygroundConfig(dataset="moons", learning_rate=0.5, init_seed=1))
    start = s.history[0].train_loss
    first = s.step(200)
    assert s.history[-1].train_loss < 0.6 * start and s.history[-1].train_accuracy > 0.8
    s.reset()
    assert s.step_count == 0 and s.history[0].train_loss == start
    assert [r.train_loss for r in s.step(200)] == [r.train_loss for r in first]  # same weights, same batches
    s.new_weights(seed=2)
    assert s.history[0].train_loss != start
    # A NaN weight: training stops at once and says why, instead of drawing garbage.
    with torch.no_grad():
        s.net.params[0][0][0, 0] = float("nan")
    assert s.step(5) == [] and "NaN" in s.paused_reason


def test_cli_trains_and_writes_a_valid_png(tmp_path, capsys):
    import json
    import struct
    import zlib

    from prediction_machine import cli

    png = tmp_path / "moons.png"
    assert (
        cli.main(
            ["backprop", "--dataset", "moons", "--steps", "300", "--lr", "0.5", "--png", str(png), "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (
        out["steps"] == 300
        and out["train_loss"] < 0.6 * out["start"]["train_loss"]
        and out["test_accuracy"] > 0.8
    )
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (480, 480, 8, 2)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)  # one filter byte + RGB per row
    assert cli.main(["backprop", "--steps", "0"]) == 2  # bad input: one line, exit 2
    assert "--steps" in capsys.readouterr().err
