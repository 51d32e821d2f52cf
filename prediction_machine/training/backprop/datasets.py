"""Four small 2-D classification datasets, generated from a seeded NumPy RNG (no downloads, no sklearn).

Reference: the shapes follow the classic toy problems of the TensorFlow Playground and
scikit-learn's make_moons / make_circles, re-derived here from their geometry.

Every dataset returns points X (N, 2) inside roughly [-1, 1]² and labels y (N,) in {0, 1},
shuffled. The same (name, n, noise, seed) always gives the same points.
"""

from __future__ import annotations

import numpy as np

EXTENT = 1.5  # the playground shows and accepts points in [-EXTENT, EXTENT]²


def moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: the upper one is class 0, the lower (shifted) one class 1."""
    a = n // 2
    t0 = rng.uniform(0, np.pi, a)
    t1 = rng.uniform(0, np.pi, n - a)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)  # (a, 2)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)  # (n - a, 2)
    X = np.concatenate([upper, lower]) - [0.5, 0.25]  # centre the pair on the origin
    X = X / 1.2  # x spans [-1.5, 1.5] once centred: scale it to about [-1.25, 1.25]
    y = np.concatenate([np.zeros(a), np.ones(n - a)])
    return X, y


def circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ring (class 0) around a disc (class 1): not separable by any straight line."""
    a = n // 2
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.concatenate([rng.uniform(0.65, 0.95, a), rng.uniform(0.0, 0.35, n - a)])
    X = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    y = np.concatenate([np.zeros(a), np.ones(n - a)])
    return X, y


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 where x and y have the same sign: the problem one neuron alone cannot solve."""
    X = rng.uniform(-1, 1, (n, 2))
    X = X + np.sign(X) * 0.05  # a small gap along the axes, so the classes do not touch
    y = (X[:, 0] * X[:, 1] > 0).astype(float)
    return X, y


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two arms winding out from the centre, 1.5 turns each, half a turn apart: the hardest of the four.

    Arm k (its class) at radius r sits at angle 1.5 · 2π · r / R_MAX + k · π, so along any ray from the
    centre the classes alternate every 0.43 in radius: the network must learn rings that wind.
    """
    a = n // 2
    uniform = np.concatenate([rng.uniform(0, 1, a), rng.uniform(0, 1, n - a)])  # (n,)
    r = uniform**0.8 * 1.3 + 0.1  # (n,) denser near the middle
    turn = r / 1.4 * 1.5 * 2 * np.pi  # (n,) 1.5 turns from the centre to the rim
    phase = np.concatenate([np.zeros(a), np.full(n - a, np.pi)])  # the second arm, half a turn on
    X = np.stack([r * np.cos(turn + phase), r * np.sin(turn + phase)], 1)  # (n, 2)
    y = np.concatenate([np.zeros(a), np.ones(n - a)])
    return X, y


GENERATORS = {"moons": moons, "circles": circles, "xor": xor, "spiral": spiral}
# The arms of the spiral are 0.43 apart: the full jitter would blur them into one cloud, so it gets half.
NOISE_SCALE = {"spiral": 0.5}


def make(name: str, n: int = 200, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points X (n, 2) and labels y (n,) of a named dataset, with Gaussian noise of std `noise`.

    >>> X, y = make("xor", 4, 0.0, seed=1); X.shape, sorted(set(y.tolist())) <= [0.0, 1.0]
    ((4, 2), True)
    """
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(GENERATORS)}")
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    rng = np.random.default_rng(seed)
    X, y = GENERATORS[name](n, noise, rng)
    X = X + rng.normal(0, noise * NOISE_SCALE.get(name, 1.0), X.shape) * (noise > 0)
    X = np.clip(X, -EXTENT, EXTENT)
    order = rng.permutation(n)  # shuffled, so a train/test split by position is a random split
    return X[order], y[order]
