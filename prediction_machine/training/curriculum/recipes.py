"""Named recipes: the exact settings that rebuild every shipped model.

    prediction-machine pretrain --recipe shakespeare-base        # from scratch, 1,200 steps
    prediction-machine finetune --recipe shakespeare-chat        # from shakespeare-base, 600 steps
    prediction-machine align --recipe shakespeare-dpo            # from shakespeare-chat, 40 steps
    prediction-machine sequences-train --recipe digits           # and --recipe melody
    prediction-machine pretrain --recipe shakespeare-base --steps 20     # the same recipe, shorter

A recipe is a small JSON file in prediction_machine/data/recipes/, one per shipped model: the
command that runs it, the shipped model it starts from, and that command's config, field for
field as the shipped model's run.json records it (tests/test_recipes.py holds the two equal).

    {"name": "shakespeare-chat", "trainer": "finetune", "base": "shakespeare-base",
     "config": {"steps": 600, "batch_size": 16, "lr": 0.002, ...}}

This module imports no PyTorch until a recipe's config is built: the CLI checks names with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path

from prediction_machine.config import TrainSettings

TRAINERS = ("pretrain", "finetune", "dpo", "sequences")  # each recipe names the one that runs it
COMMANDS = {"pretrain": "pretrain", "finetune": "finetune", "dpo": "align", "sequences": "sequences-train"}


def config_class(trainer: str) -> type[TrainSettings]:
    """The config dataclass of a trainer (imported here, not at the top: the trainers import PyTorch)."""
    if trainer == "pretrain":
        from prediction_machine.training.curriculum.pretrain import TrainConfig as cls
    elif trainer == "finetune":
        from prediction_machine.training.curriculum.finetune import FinetuneConfig as cls
    elif trainer == "dpo":
        from prediction_machine.training.curriculum.dpo import DPOConfig as cls
    elif trainer == "sequences":
        from prediction_machine.sequences.train import SeqTrainConfig as cls
    else:
        raise ValueError(f"trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
    return cls


@dataclass(frozen=True)
class Recipe:
    name: str  # the shipped model it rebuilds, and the file's name
    trainer: str  # one of TRAINERS
    config: TrainSettings  # the trainer's config, every field
    base: str | None = None  # the shipped model it starts from (None: from scratch)

    def to_dict(self) -> dict:
        return {"name": self.name, "trainer": self.trainer, "base": self.base,
                "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        return cls(d["name"], d["trainer"], config_class(d["trainer"]).from_dict(d["config"]), d.get("base"))

    def with_steps(self, steps: int | None) -> Recipe:
        """The same recipe for `steps` optimizer steps (None: as recorded)."""
        return self if steps is None else replace(self, config=replace(self.config, steps=steps))


# ----------------------------------------------------------------------------- the files


def folder() -> Path:
    return Path(str(files("prediction_machine") / "data" / "recipes"))


def names(trainer: str | None = None) -> list[str]:
    """The recipes' names, all of them or one trainer's. Example: names("dpo") -> ["shakespeare-dpo"]."""
    found = sorted(p.stem for p in folder().glob("*.json"))
    return [n for n in found if trainer is None or _trainer(n) == trainer]


def _trainer(name: str) -> str:
    return json.loads((folder() / f"{name}.json").read_text())["trainer"]


def check(name: str, trainer: str) -> str:
    """`name` if it is one of `trainer`'s recipes, else a ValueError listing every recipe and its command."""
    if name in names(trainer):
        return name
    known = ", ".join(f"{n} ({COMMANDS[_trainer(n)]})" for n in names())
    if name in names():
        raise ValueError(f"{name!r} is a recipe of `{COMMANDS[_trainer(name)]}`, "
                         f"not of `{COMMANDS[trainer]}`; "
                         f"the recipes are: {known}")
    raise ValueError(f"unknown recipe {name!r}; the recipes are: {known}")


def load(path: Path) -> Recipe:
    return Recipe.from_dict(json.loads(Path(path).read_text()))


def save(recipe: Recipe, path: Path) -> None:
    Path(path).write_text(json.dumps(recipe.to_dict(), indent=1) + "\n")


def get(name: str) -> Recipe:
    """The recipe of that name; a ValueError listing the known ones if there is none."""
    if name not in names():
        raise ValueError(f"unknown recipe {name!r}; the recipes are: {', '.join(names())}")
    return load(folder() / f"{name}.json")
