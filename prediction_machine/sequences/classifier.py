"""A small digit classifier trained on the real digits: the judge of what the model drew.

It never sees the model's drawings while training, only scikit-learn's real handwritten
digits (the training split), so when it says "this looks like a 3, 97% sure" about a drawing
that was asked to be a 3, that is an automatic, honest check of the drawing model.

A multilayer perceptron: 64 pixels -> 128 ReLU units -> 10 scores. Full-batch AdamW, about
a second on a CPU. Its weights ship beside the drawing model (classifier.safetensors).
"""

from __future__ import annotations

import torch
from torch import nn

from prediction_machine.sequences import pixel_tokens as pt

HIDDEN = 128


def build() -> nn.Sequential:
    return nn.Sequential(nn.Linear(pt.PIXELS, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def as_input(images: list[list[int]]) -> torch.Tensor:
    return torch.tensor(images, dtype=torch.float32) / (pt.LEVELS - 1)  # (N, 64) in [0, 1]


def fit(images: list[list[int]], labels: list[int], epochs: int = 400, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = build()
    x, y = as_input(images), torch.tensor(labels)  # (N, 64), (N,)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-2)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval().requires_grad_(False)


def state(net: nn.Sequential) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in net.state_dict().items()}


def from_state(tensors: dict[str, torch.Tensor]) -> nn.Sequential:
    net = build()
    net.load_state_dict(tensors)
    return net.eval().requires_grad_(False)


@torch.no_grad()
def probabilities(net: nn.Sequential, images: list[list[int]]) -> torch.Tensor:
    return torch.softmax(net(as_input(images)), dim=-1)  # (N, 10)


def accuracy(net: nn.Sequential, images: list[list[int]], labels: list[int]) -> float:
    guess = probabilities(net, images).argmax(-1)  # (N,)
    return float((guess == torch.tensor(labels)).float().mean())
