"""One neuron, one training step, every number shown: forward, loss, backward edge by edge, update.

Reference: the chain rule, applied by `engine.Value.backward()`.

The neuron is y = act(x1·w1 + x2·w2 + b) with loss L = (y − target)². Built from `Value`s,
its computation graph has these nodes (what the page draws):

    x1, w1 → x1·w1 ┐
    x2, w2 → x2·w2 ┴→ s → z = s + b → y = act(z) → e = y − target → L = e²

Worked example (tanh, x = (1, 0), w = (0.5, 0), b = 0, target 1, lr 0.1):
y = tanh(0.5) = 0.4621, L = 0.2893, dL/dw1 = 2(y−1)(1−y²)·x1 = −0.8460, w1 ← 0.5 + 0.0846.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from prediction_machine.training.backprop.engine import Graph, Value, export_graph


@dataclass
class ParamUpdate:
    name: str
    before: float
    grad: float  # dL/d(param)
    after: float  # before − lr · grad


@dataclass
class NeuronStep:
    graph: Graph  # nodes in forward order, edges in the order backward() applies them
    prediction: float
    loss: float
    updates: list[ParamUpdate]
    new_prediction: float  # the same input through the updated neuron
    new_loss: float

    def to_dict(self) -> dict:
        return {**self.graph.to_dict(), "prediction": self.prediction, "loss": self.loss,
                "updates": [asdict(u) for u in self.updates], "new_prediction": self.new_prediction,
                "new_loss": self.new_loss}


def forward(x1: float, x2: float, w1: float, w2: float, b: float, target: float,
            activation: str) -> tuple[Value, Value, dict[str, Value]]:
    """Build the graph; returns (prediction y, loss L, the leaves by name)."""
    named = (("x1", x1), ("w1", w1), ("x2", x2), ("w2", w2), ("b", b), ("target", target))
    leaves = {name: Value(v, label=name) for name, v in named}
    m1 = leaves["x1"] * leaves["w1"]
    m1.label = "x1·w1"
    m2 = leaves["x2"] * leaves["w2"]
    m2.label = "x2·w2"
    s = m1 + m2
    s.label = "s"
    z = s + leaves["b"]
    z.label = "z"
    y = z.activation(activation)
    y.label = "y"
    e = y - leaves["target"]
    e.label = "e"
    loss = e**2
    loss.label = "L"
    return y, loss, leaves


def neuron_step(x1: float, x2: float, w1: float, w2: float, b: float, target: float, lr: float,
                activation: str = "tanh") -> NeuronStep:
    """One full step of gradient descent on one neuron, with the graph for drawing."""
    y, loss, leaves = forward(x1, x2, w1, w2, b, target, activation)
    loss.backward()
    graph = export_graph(loss)
    updates = [ParamUpdate(n, leaves[n].data, leaves[n].grad, leaves[n].data - lr * leaves[n].grad)
               for n in ("w1", "w2", "b")]
    new = {u.name: u.after for u in updates}
    y2, loss2, _ = forward(x1, x2, new["w1"], new["w2"], new["b"], target, activation)
    return NeuronStep(graph, y.data, loss.data, updates, y2.data, loss2.data)
