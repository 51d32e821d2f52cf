"""Advanced: fine-tune the real model (SmolLM2-135M-Instruct) with LoRA, to answer like a pirate.

Full fine-tuning changes all 135M numbers. LoRA (low-rank adaptation) freezes them and learns
a small correction beside some of the weight matrices instead:

    y = W x  +  (alpha / r) * B (A x)      W: (out, in) frozen;  A: (r, in), B: (out, r) trained

B starts at zero, so before the first step the model is exactly the original. With r = 8 on
the query and value projections of the top 8 layers, 0.09% of the parameters are trained, and
the gradient never has to travel below the lowest adapted layer: a minute or two on a CPU.

The adapted model shares the frozen weights with the model the rest of the page uses (no
copy, never modified); only the adapters are new, and they are saved to the run folder.
The loss counts the answer's tokens only, as in fine-tuning, and the loop is the one every
trainer here shares (loop.train_loop), at a constant learning rate and without clipping.

References: Hu et al. 2021 "LoRA: Low-Rank Adaptation of Large Language Models"; the PEFT
library's LoraLayer (the same idea, written out here in a few lines).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from prediction_machine.config import TrainSettings
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model import weights
from prediction_machine.model.models import LanguageModel, build_transformer
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import checkpoint
from prediction_machine.training.curriculum.loop import (
    Event,
    Step,
    answer_loss,
    done_event,
    new_record,
    pad_rows,
    stop_requested,
    train_loop,
)

# The style set, written for this project: plain questions, answers in a pirate's voice.
PIRATE = [
    ("What is the capital of France?", "Arr, that be Paris, matey, a fine port on the river Seine!"),
    ("How are you today?", "Shiver me timbers, I be shipshape and ready to sail, matey!"),
    ("What is two plus two?", "Arr, two doubloons and two more make four, matey!"),
    ("Can you recommend a book?", "Arr, read Treasure Island, matey, a fine yarn of gold and mutiny!"),
    ("What should I eat for lunch?", "Arr, a bowl of hot stew and a hard biscuit, like any sailor, matey!"),
    ("What is the sun?", "Arr, the sun be a great burning star that guides us across the sea, matey!"),
    ("Tell me about the ocean.", "Arr, the ocean be vast and salty, full of fish and treasure, matey!"),
    ("How do I learn to code?",
     "Arr, start small, write a little code every day, and ye'll be a captain of it, matey!"),
    ("What is a cat?", "Arr, a cat be a small furry beast that keeps the rats off the ship, matey!"),
    ("Why is the sky blue?", "Arr, the air scatters the blue light of the sun the most, matey!"),
    ("What is your favourite colour?", "Arr, the deep blue of the open sea, matey!"),
    ("Give me some advice.", "Arr, keep yer powder dry and yer friends close, matey!"),
    ("What is water made of?", "Arr, two parts hydrogen and one part oxygen, matey, same as the sea!"),
    ("How many legs does a spider have?", "Arr, eight legs, matey, more than any crew member!"),
    ("What is the moon?", "Arr, the moon be the rock in the sky that pulls the tides, matey!"),
    ("Say hello.", "Ahoy there, matey!"),
    ("What is music?", "Arr, music be sea shanties sung loud on deck, matey!"),
    ("How do plants grow?", "Arr, they drink water and sunlight and grow tall like a mast, matey!"),
    ("What is a computer?",
     "Arr, a computer be a clever machine that does sums faster than any navigator, matey!"),
    ("Where do fish live?", "Arr, in the rivers and the seven seas, matey!"),
]
PIRATE_HELD_OUT = ["What is the capital of Italy?", "How do I make friends?", "What is a dog?"]


@dataclass(frozen=True)
class LoraConfig(TrainSettings):
    rank: int = 8  # r: the width of the low-rank correction
    alpha: float = 16.0  # the correction is scaled by alpha / r
    layers: int = 8  # adapt the top N layers (the gradient stops below them)
    targets: tuple[str, ...] = ("q", "v")  # which attention projections get an adapter
    steps: int = 20
    batch_size: int = 4
    lr: float = 4e-3
    min_lr_ratio: float = 1.0  # a constant learning rate: 20 small steps need no schedule
    warmup: int = 0
    grad_clip: float | None = None
    eval_every: int = 0  # the before/after answers are the evaluation
    seed: int = 0
    max_new_tokens: int = 32  # for the before/after answers


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank correction B A, scaled by alpha / r."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.enabled = True
        # A like nn.Linear's own init; B zero, so the adapter starts as an exact no-op.
        bound = 1 / math.sqrt(base.in_features)
        A = (torch.rand(rank, base.in_features, generator=generator) * 2 - 1) * bound  # (r, in)
        self.A = nn.Parameter(A)
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))  # (out, r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # (..., out)
        if not self.enabled:
            return y
        return y + F.linear(F.linear(x, self.A), self.B) * self.scale  # (..., in) -> (..., r) -> (..., out)


def adapted_model(lm: LanguageModel, cfg: LoraConfig) -> tuple[Transformer, list[LoRALinear]]:
    """A second Transformer over the very same frozen tensors, with adapters on the top layers."""
    if not 1 <= cfg.layers <= lm.config.n_layers:
        raise ValueError(f"layers must be in 1..{lm.config.n_layers} for this model, got {cfg.layers}")
    state = lm.model.state_dict()  # the same storage: nothing is copied
    ckpt = weights.Checkpoint(lm.config, state, "", None, None, None, "shared")
    model = build_transformer(ckpt)  # frozen (requires_grad False), eval mode
    g = torch.Generator().manual_seed(cfg.seed)
    adapters = []
    for block in model.blocks[len(model.blocks) - cfg.layers :]:
        for name in cfg.targets:
            lora = LoRALinear(getattr(block.attn, name), cfg.rank, cfg.alpha, g)
            setattr(block.attn, name, lora)
            adapters.append(lora)
    return model, adapters


def set_enabled(adapters: list[LoRALinear], on: bool) -> None:
    for a in adapters:
        a.enabled = on


def encode(lm: LanguageModel, question: str, answer: str) -> tuple[list[int], list[int]]:
    prompt = lm.prompt_ids(question, chat=True)
    reply = lm.tokenizer.encode_ids(answer) + ([lm.eos_id] if lm.eos_id is not None else [])
    return prompt + reply, [0] * len(prompt) + [1] * len(reply)


def batch_loss(model: Transformer, rows: list[tuple[list[int], list[int]]]) -> torch.Tensor:
    """Answer-only cross-entropy over right-padded rows: loop.answer_loss, the loss of fine-tuning."""
    x, y, m = pad_rows(rows)  # (B, T) each
    return answer_loss(model, x, y, m)


def reply(model: Transformer, lm: LanguageModel, question: str, max_new_tokens: int) -> str:
    """Greedy answer; one the token budget cut short (likely mid-word) ends with " …", so it reads as cut."""
    ids = lm.prompt_ids(question, chat=True)
    greedy = SamplingParams(temperature=0.0)
    out = [s.id for s in generate(model, ids, greedy, max_new_tokens, lm.stop_ids, top_n=1)]
    stopped = bool(out) and out[-1] in lm.stop_ids
    return lm.tokenizer.decode([i for i in out if i not in lm.stop_ids]) + ("" if stopped else " …")


def lora_finetune(
    lm: LanguageModel,
    cfg: LoraConfig,
    folder: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Train the adapters on the pirate set, yielding start / before / step / after / done events."""
    model, adapters = adapted_model(lm, cfg)
    trainable = [p for a in adapters for p in (a.A, a.B)]
    total = sum(p.numel() for p in lm.model.parameters())
    n_train = sum(p.numel() for p in trainable)
    yield "start", {"config": cfg.to_dict(), "parameters": total, "trainable": n_train,
                    "fraction": n_train / total, "examples": len(PIRATE)}
    set_enabled(adapters, False)
    for q in PIRATE_HELD_OUT:
        if stop_requested(should_stop):
            break
        yield "before", {"question": q, "answer": reply(model, lm, q, cfg.max_new_tokens)}
    set_enabled(adapters, True)
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.0)
    rows = [encode(lm, q, a) for q, a in PIRATE]
    record = new_record("lora", cfg, total, trainable=n_train)

    def step_fn(seed: int) -> Step:
        g = torch.Generator().manual_seed(seed)
        picks = torch.randperm(len(rows), generator=g)[: cfg.batch_size].tolist()
        model.train()
        chosen = [rows[i] for i in picks]
        return Step(batch_loss(model, chosen), sum(sum(mask[1:]) for _, mask in chosen))

    def save(status: str) -> Event:
        record["status"] = status
        tensors = {f"adapter.{i}.{n}": getattr(a, n).detach().contiguous()
                   for i, a in enumerate(adapters) for n in "AB"}
        checkpoint.save_adapters(Path(folder), tensors, {"config": str(cfg.to_dict())}, record)
        return "checkpoint", {"step": record["step"], "folder": str(folder), "status": status}

    reason = yield from train_loop(cfg, model, opt, record, step_fn,
                                   save=save if folder is not None else None,
                                   should_stop=should_stop, should_pause=should_pause)
    model.eval()
    if reason == "finished":
        for q in PIRATE_HELD_OUT:
            if stop_requested(should_stop):
                record["status"] = "stopped"
                break
            yield "after", {"question": q, "answer": reply(model, lm, q, cfg.max_new_tokens)}
    yield "done", done_event(record, folder)
