"""Neuron, Layer and MLP built from scalar `Value`s, plus the loss the playground trains with.

References: micrograd's nn.py (A. Karpathy); LeCun, Bottou, Orr & Müller, "Efficient BackProp"
(1998) for the 1/fan_in scale of the initial weights.

A neuron computes act(w · x + b). A layer is several neurons reading the same inputs. An MLP
stacks layers; its last layer has one neuron and no activation, so it outputs a *logit* z:
the network's belief that a point is class 1 is sigmoid(z).

This path is slow (one Python object per number) but every number in it can be drawn. The
playground trains with `vectorized.TensorMLP`, which computes exactly the same function;
`tests/test_backprop_engine.py` checks that the two agree.
"""

from __future__ import annotations

import math
import random

from prediction_machine.training.backprop.engine import Value

ACTIVATIONS = ("tanh", "relu", "sigmoid")


def init_parameters(sizes: list[int], seed: int) -> list[tuple[list[list[float]], list[float]]]:
    """Initial weights for layer sizes, e.g. [2, 8, 8, 1]: one (W (out, in), b (out,)) per layer.

    Uniform in ±sqrt(3/fan_in): variance 1/fan_in, so every pre-activation starts around ±1 whatever
    the width. Biases start at 0. The same seed gives the same numbers, which is what makes "reset" fair.
    """
    rng = random.Random(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = math.sqrt(3.0 / fan_in)  # uniform(-a, a) has variance a²/3 = 1/fan_in
        W = [[rng.uniform(-bound, bound) for _ in range(fan_in)] for _ in range(fan_out)]
        params.append((W, [0.0] * fan_out))
    return params


class Neuron:
    def __init__(self, weights: list[float], bias: float, activation: str = "tanh"):
        self.w = [Value(w, label=f"w{i + 1}") for i, w in enumerate(weights)]
        self.b = Value(bias, label="b")
        self.activation = activation  # "linear" for the output neuron

    def __call__(self, x: list) -> Value:
        z = self.b
        for wi, xi in zip(self.w, x, strict=True):
            z = z + wi * xi
        return z.activation(self.activation)

    def parameters(self) -> list[Value]:
        return self.w + [self.b]


class Layer:
    def __init__(self, W: list[list[float]], b: list[float], activation: str):
        self.neurons = [Neuron(row, bias, activation) for row, bias in zip(W, b, strict=True)]

    def __call__(self, x: list) -> list[Value]:
        return [n(x) for n in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]


class MLP:
    """Multi-layer perceptron: hidden layers with `activation`, then one linear output (a logit)."""

    def __init__(self, sizes: list[int], activation: str = "tanh", seed: int = 0, params=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        params = params if params is not None else init_parameters(sizes, seed)
        last = len(params) - 1
        self.sizes, self.activation = list(sizes), activation
        self.layers = [Layer(W, b, "linear" if i == last else activation) for i, (W, b) in enumerate(params)]

    def __call__(self, x: list) -> Value:
        for layer in self.layers:
            x = layer(x)
        return x[0]

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def weights(self) -> list[Value]:
        """The weights without the biases: L2 regularisation shrinks only these."""
        return [w for layer in self.layers for n in layer.neurons for w in n.w]

    def export(self) -> list[tuple[list[list[float]], list[float]]]:
        """Current numbers in the same layout as init_parameters()."""
        return [([[w.data for w in n.w] for n in layer.neurons], [n.b.data for n in layer.neurons])
                for layer in self.layers]


def bce_with_logits(z: Value, y: float) -> Value:
    """Binary cross-entropy of a logit z against a label y in {0, 1}, without overflow.

    -[y log σ(z) + (1-y) log(1-σ(z))] = softplus(z) - z·y, with softplus(z) = log(1 + e^z).
    Its gradient is σ(z) - y: the predicted probability minus the label.
    Example: z = 0 (a 50/50 guess) costs log 2 ≈ 0.693 whatever the label.
    """
    return z.softplus() - z * y


def loss(model: MLP, X: list[list[float]], y: list[float], l2: float = 0.0) -> Value:
    """Mean cross-entropy over the points, plus l2 · Σ w² over the weights (the objective we descend)."""
    total = sum((bce_with_logits(model(x), t) for x, t in zip(X, y, strict=True)), Value(0.0)) / len(X)
    if l2:
        total = total + l2 * sum((w * w for w in model.weights()), Value(0.0))
    return total
