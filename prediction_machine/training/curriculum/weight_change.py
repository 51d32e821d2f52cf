"""What fine-tuning changed inside: the relative change of every weight matrix, layer by layer.

For each matrix W of a model before and after some training,

    change = ||W_after - W_before|| / ||W_before||        (Frobenius norms)

0 means untouched, 0.01 means the matrix moved by 1% of its own size. Laid out as layers x
matrices it is a heatmap: a small, located edit shows as a few warm cells on a cold map; a
new brain as a warm map everywhere.

A LoRA run stores no whole matrices, only its adapters: there the change of W is the adapter's
own product, dW = (alpha / r) B A (lora.py), measured against the frozen W it sits beside.

Both models must have the same shapes (one was trained from the other); anything else is a
ValueError that names the first matrix that differs.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from prediction_machine.model import models
from prediction_machine.training.curriculum import checkpoint

# The columns of the heatmap, in the order the model reads them (transformer.py): attention, then MLP.
MATRICES = ("attn_norm", "q", "k", "v", "o", "mlp_norm", "gate", "up", "down")
PARTS = {"attn_norm": "attn_norm", "q": "attn.q", "k": "attn.k", "v": "attn.v", "o": "attn.o",
         "mlp_norm": "mlp_norm", "gate": "mlp.gate", "up": "mlp.up", "down": "mlp.down"}
LORA_FILE = "lora.safetensors"


@dataclass
class WeightChange:
    before: str  # the two models' names, as answers show them
    after: str
    layers: int
    matrices: tuple[str, ...]
    grid: list[list[float]]  # (L, M): relative change of each layer's matrices
    others: dict[str, float]  # the matrices outside the layers: embedding, final norm
    overall: float  # the whole model: sqrt(sum ||dW||^2) / sqrt(sum ||W||^2)
    changed_share: float  # share of all the weight change that sits in the top `top_cells` cells
    top_cells: int
    largest: dict = field(default_factory=dict)  # {"layer", "matrix", "change"} of the warmest cell
    lora: bool = False

    def to_dict(self) -> dict:
        return {"before": self.before, "after": self.after, "layers": self.layers,
                "matrices": list(self.matrices), "grid": self.grid, "others": self.others,
                "overall": self.overall, "changed_share": self.changed_share, "top_cells": self.top_cells,
                "largest": self.largest, "lora": self.lora}


def relative(before: torch.Tensor, after: torch.Tensor) -> float:
    """||after - before|| / ||before||.

    >>> relative(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 4.5]))
    0.1
    """
    norm = before.float().norm().item()
    return (after.float() - before.float()).norm().item() / norm if norm > 0 else 0.0


def compare_states(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], n_layers: int,
                   names: tuple[str, str] = ("before", "after"), top_fraction: float = 0.2,
                   lora: bool = False) -> WeightChange:
    """Relative change of each matrix between two state dicts with the same keys and shapes.

    `after` may hold only some keys (a LoRA delta's adapted matrices, given as W + dW): the
    others count as unchanged.
    """
    for key, w in after.items():
        if key not in before or before[key].shape != w.shape:
            shape = tuple(before[key].shape) if key in before else "absent"
            raise ValueError(f"{names[1]} does not match {names[0]}: {key} is {tuple(w.shape)} "
                             f"against {shape}; compare a model with one trained from it")
    grid, moved, total = [], [], 0.0
    for layer in range(n_layers):
        row = []
        for m in MATRICES:
            key = f"blocks.{layer}.{PARTS[m]}.weight"
            w = before[key]
            d = (after[key].float() - w.float()).norm().item() if key in after else 0.0
            norm = w.float().norm().item()
            row.append(d / norm if norm > 0 else 0.0)
            moved.append(d * d)
            total += norm * norm
        grid.append(row)
    others = {}
    for key in sorted(k for k in before if not k.startswith("blocks.")):
        others[key.removesuffix(".weight")] = relative(before[key], after[key]) if key in after else 0.0
        d = (after[key].float() - before[key].float()).norm().item() if key in after else 0.0
        moved.append(d * d)
        total += before[key].float().norm().item() ** 2
    top = max(1, round(top_fraction * n_layers * len(MATRICES)))
    all_moved = sum(moved)
    layer_cells = sorted(moved[: n_layers * len(MATRICES)], reverse=True)
    share = sum(layer_cells[:top]) / all_moved if all_moved > 0 else 0.0
    flat = [(v, i, j) for i, row in enumerate(grid) for j, v in enumerate(row)]
    v, i, j = max(flat) if flat else (0.0, 0, 0)
    return WeightChange(names[0], names[1], n_layers, MATRICES, grid, others,
                        (all_moved / total) ** 0.5 if total > 0 else 0.0, share, top,
                        {"layer": i, "matrix": MATRICES[j], "change": v}, lora)


# ----------------------------------------------------------------------------- models by name


def folder_of(name: str | Path) -> Path:
    """A shipped model's name or a checkpoint folder -> the folder its current files are in."""
    return checkpoint.files(models.checkpoint_folder(str(name)))


def read_state(folder: Path) -> tuple[dict[str, torch.Tensor], int]:
    """A checkpoint's tensors (without building a model) and its number of layers."""
    if not (folder / checkpoint.MARKER).is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"{models.shown_path(folder)} is not a checkpoint folder of this project "
                         "(no prediction-machine.json and model.safetensors in it)")
    meta = json.loads((folder / checkpoint.MARKER).read_text())
    return load_file(str(folder / "model.safetensors")), int(meta["config"]["n_layers"])


def is_lora(name: str | Path) -> bool:
    return (folder_of(name) / LORA_FILE).is_file()


def lora_deltas(folder: Path, before: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """W + (alpha / r) B A for each adapted matrix of a LoRA run (lora.py's order: top layers, targets)."""
    tensors = load_file(str(folder / LORA_FILE))
    with open(folder / LORA_FILE, "rb") as f:  # the adapters' settings sit in the file's own header
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    cfg = ast.literal_eval(header["__metadata__"]["config"])  # written as str(dict) by lora.py
    targets, first = list(cfg["targets"]), n_layers - int(cfg["layers"])
    scale = float(cfg["alpha"]) / float(cfg["rank"])
    out = {}
    for i in range(len(tensors) // 2):
        layer, target = first + i // len(targets), targets[i % len(targets)]
        key = f"blocks.{layer}.attn.{target}.weight"
        dw = scale * tensors[f"adapter.{i}.B"] @ tensors[f"adapter.{i}.A"]  # (out, r) x (r, in) -> (out, in)
        out[key] = before[key].float() + dw
    return out


def diff_models(before: str | Path, after: str | Path) -> WeightChange:
    """The relative weight change from model `before` to model `after` (names or checkpoint folders).

    `after` may be a LoRA run folder: `before` is then the model it adapted (SmolLM2).
    """
    names = (models.shown_name(str(before)), models.shown_name(str(after)))
    if is_lora(after):
        lm = models.load(str(before))
        state = {k: v for k, v in lm.model.state_dict().items()}
        n_layers = lm.config.n_layers
        return compare_states(state, lora_deltas(folder_of(after), state, n_layers), n_layers, names,
                              lora=True)
    a_state, a_layers = read_state(folder_of(before))
    b_state, b_layers = read_state(folder_of(after))
    if a_layers != b_layers or set(a_state) != set(b_state):
        raise ValueError(f"{names[1]} ({b_layers} layers) was not trained from {names[0]} "
                         f"({a_layers} layers): their matrices differ")
    return compare_states(a_state, b_state, a_layers, names)
