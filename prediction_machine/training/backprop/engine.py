"""A scalar automatic-differentiation engine: every number remembers how it was made.

References: A. Karpathy, micrograd (the hundred-line teaching engine this follows in spirit);
Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors" (1986).

A `Value` holds one float (`data`), the operation that produced it (`op`), its inputs
(`inputs`) and, for each input, the *local derivative* d(this)/d(input), computed once in the
forward pass. `backward()` walks the graph from the output back to the leaves in reverse
topological order and applies the chain rule edge by edge:

    input.grad += local_derivative * output.grad

Worked example: for L = a*b + a with a=2, b=3, the node a feeds two edges, so it receives
both contributions: dL/da = b + 1 = 4, dL/db = a = 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class Value:
    """One scalar in a computation graph, with its gradient after `backward()`."""

    __slots__ = ("data", "grad", "op", "inputs", "local", "label")

    def __init__(self, data: float, inputs: tuple[Value, ...] = (), op: str = "",
                 local: tuple[float, ...] = (), label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.op = op  # "" for a leaf (an input or a parameter)
        self.inputs = inputs
        self.local = local  # local[i] = d(self)/d(inputs[i]), evaluated at this forward pass
        self.label = label

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{', op=' + self.op if self.op else ''})"

    # ------------------------------------------------------------------------- operations
    # Each one computes the output and the local derivative towards each input, nothing more.

    def __add__(self, other) -> Value:
        other = as_value(other)
        return Value(self.data + other.data, (self, other), "+", (1.0, 1.0))

    def __sub__(self, other) -> Value:
        other = as_value(other)
        return Value(self.data - other.data, (self, other), "-", (1.0, -1.0))

    def __mul__(self, other) -> Value:
        other = as_value(other)
        return Value(self.data * other.data, (self, other), "*", (other.data, self.data))

    def __truediv__(self, other) -> Value:
        other = as_value(other)
        local = (1.0 / other.data, -self.data / other.data**2)  # d(a/b)/da = 1/b, d(a/b)/db = -a/b²
        return Value(self.data / other.data, (self, other), "/", local)

    def __pow__(self, k: float) -> Value:
        assert isinstance(k, (int, float)), "only constant exponents: x ** 2, not x ** y"
        return Value(self.data**k, (self,), f"**{k:g}", (k * self.data ** (k - 1),))

    def __neg__(self) -> Value:
        return Value(-self.data, (self,), "neg", (-1.0,))

    def __radd__(self, other) -> Value:
        return as_value(other) + self

    def __rsub__(self, other) -> Value:
        return as_value(other) - self

    def __rmul__(self, other) -> Value:
        return as_value(other) * self

    def __rtruediv__(self, other) -> Value:
        return as_value(other) / self

    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value(e, (self,), "exp", (e,))  # d/dx e^x = e^x

    def log(self) -> Value:
        return Value(math.log(self.data), (self,), "log", (1.0 / self.data,))

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        return Value(t, (self,), "tanh", (1.0 - t * t,))

    def relu(self) -> Value:
        # The kink at 0 gets derivative 0, the same convention as PyTorch.
        return Value(max(self.data, 0.0), (self,), "relu", (1.0 if self.data > 0 else 0.0,))

    def sigmoid(self) -> Value:
        s = stable_sigmoid(self.data)
        return Value(s, (self,), "sigmoid", (s * (1.0 - s),))

    def softplus(self) -> Value:
        """log(1 + e^x), computed without overflow; its derivative is sigmoid(x)."""
        sp = max(self.data, 0.0) + math.log1p(math.exp(-abs(self.data)))
        return Value(sp, (self,), "softplus", (stable_sigmoid(self.data),))

    def activation(self, name: str) -> Value:
        """'tanh', 'relu', 'sigmoid' or 'linear' (no change)."""
        return self if name == "linear" else getattr(self, name)()

    # ------------------------------------------------------------------------- backward

    def backward(self) -> None:
        """Fill `.grad` of every node this one depends on with d(self)/d(node).

        Gradients are zeroed first, so calling backward twice gives the same numbers
        (not twice them). Within one call they accumulate with +=, which is what gives a
        node used in several places the sum of all its paths.
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0  # dL/dL
        for node in reversed(order):  # every consumer of a node is visited before the node itself
            for child, local in zip(node.inputs, node.local, strict=True):
                child.grad += local * node.grad


def as_value(x) -> Value:
    return x if isinstance(x, Value) else Value(x)


def stable_sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow for large |x|: sigmoid(0) = 0.5, sigmoid(1000) = 1.0."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def topological_order(root: Value) -> list[Value]:
    """Every node reachable from root, each after all of its inputs (iterative: deep graphs are fine)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for child in node.inputs:
            if id(child) not in seen:
                stack.append((child, False))
    return order


# ----------------------------------------------------------------------------- export for drawing


@dataclass
class Node:
    id: int
    label: str
    op: str
    data: float
    grad: float


@dataclass
class Edge:
    source: int  # the input node (where the gradient arrives)
    target: int  # the node that used it (where the gradient comes from)
    slot: int  # which input of target this is (x * x has two edges from the same node)
    local: float  # d(target)/d(source): the local derivative
    contribution: float  # local * target.grad: what travels back along this edge
    grad_after: float  # source.grad once this edge has been added (grads arrive edge by edge)


@dataclass
class Graph:
    nodes: list[Node]  # topological order: the forward pass
    edges: list[Edge]  # the order backward() visits them: the backward pass

    def to_dict(self) -> dict:
        return {"nodes": [n.__dict__ for n in self.nodes], "edges": [e.__dict__ for e in self.edges]}


def export_graph(root: Value) -> Graph:
    """The graph under root as nodes and edges, with data, grad and local derivatives.

    Call root.backward() first for meaningful grads. Edges come in the order backward()
    applies them, and `grad_after` replays how each node's gradient builds up.
    """
    order = topological_order(root)
    ids = {id(v): n for n, v in enumerate(order)}
    nodes = [Node(ids[id(v)], v.label, v.op, v.data, v.grad) for v in order]
    running = {id(v): 0.0 for v in order}
    running[id(root)] = 1.0 if root.grad else 0.0
    edges = []
    for v in reversed(order):
        for slot, (child, local) in enumerate(zip(v.inputs, v.local, strict=True)):
            contribution = local * v.grad
            running[id(child)] += contribution
            edges.append(Edge(ids[id(child)], ids[id(v)], slot, local, contribution, running[id(child)]))
    return Graph(nodes, edges)
