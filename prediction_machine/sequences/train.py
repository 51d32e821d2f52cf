"""Training the pixel model and the note model: the one training loop, with another tokenizer.

The same decoder (model/transformer.py) at a tiny size, trained by the same loop
(training/curriculum/loop.py: schedule, step, pause/stop, record). Only the data differs: each
modality's module (digits.py, melody.py) hands over batches of token ids and a way to draw a sample.

    start -> step, step, ... (eval and sample now and then) -> checkpoint -> done

The shipped models were made by their recipes, `prediction-machine sequences-train --recipe digits`
(or melody); their run.json records the time, the tokens and the FLOPs.

Shape letters: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from prediction_machine.config import ModelConfig, TrainSettings
from prediction_machine.model.transformer import Transformer
from prediction_machine.sequences import digits, melody
from prediction_machine.sequences.nll import mean_nll
from prediction_machine.training.curriculum.checkpoint import save_model
from prediction_machine.training.curriculum.loop import (
    Event,
    Step,
    answer_loss,
    done_event,
    lr_schedule,
    make_optimizer,
    new_record,
    pad_rows,
    train_loop,
)
from prediction_machine.training.curriculum.pretrain import init_weights

TASKS = {"digits": digits, "melody": melody}


@dataclass(frozen=True)
class SeqTrainConfig(TrainSettings):
    kind: str = "digits"  # "digits" or "melody"
    d_model: int = 64  # a tiny decoder: about 0.2M parameters
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 192
    steps: int = 1500  # optimizer steps
    batch_size: int = 32  # sequences per step (whole images, or whole tunes)
    lr: float = 3e-3  # peak learning rate after warm-up
    warmup: int = 50
    weight_decay: float = 0.1
    eval_every: int = 100  # held-out loss every N steps
    sample_every: int = 100  # a sample every N steps (noise at first, then digits or tunes)
    seed: int = 1337


def model_config(cfg: SeqTrainConfig) -> ModelConfig:
    task = TASKS[cfg.kind]
    return ModelConfig(vocab_size=task.VOCAB, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                       n_kv_heads=cfg.n_kv_heads, d_ff=cfg.d_ff, max_seq_len=task.CONTEXT, rope_base=10000.0)


def train(cfg: SeqTrainConfig, folder: Path | None = None, should_stop: Callable[[], bool] | None = None,
          should_pause: Callable[[], bool] | None = None, extra: bool = True) -> Iterator[Event]:
    """Train one sequence model from scratch, yielding events; save it to `folder` if given.

    `extra`: save the modality's extra tensors beside it (digits: the judge, fitted in about a
    second). A live run on the page leaves them out: it is judged by the shipped model's judge."""
    task = TASKS[cfg.kind]
    torch.manual_seed(cfg.seed)
    model = Transformer(model_config(cfg))
    init_weights(model, cfg.seed)
    opt = make_optimizer(model, cfg)
    params = sum(p.numel() for p in model.parameters())
    record = new_record(cfg.kind, cfg, params)
    yield "start", {"kind": cfg.kind, "config": cfg.to_dict(), "model": model.cfg.to_dict(),
                    "parameters": params,
                    "data": task.describe_data(), "lr_schedule": lr_schedule(cfg)}
    held_out = task.held_out_rows()

    def step_fn(seed: int) -> Step:
        x, y, m = pad_rows(task.training_rows(cfg.batch_size, seed))  # (B, T) each
        model.train()
        return Step(answer_loss(model, x, y, m), int(m.sum()))

    def sample() -> dict:
        model.eval()
        return task.training_sample(model, cfg.seed + record["step"])

    def save(status: str) -> Event:
        record["status"] = status
        model.eval()
        save_model(Path(folder), model, record, task.extra_tensors() if extra else None)
        return "checkpoint", {"step": record["step"], "folder": str(folder), "status": status}

    yield from train_loop(cfg, model, opt, record, step_fn,
                          evaluate=lambda: {"eval_loss": mean_nll(model, held_out)},
                          sample=sample, save=save if folder is not None else None,
                          should_stop=should_stop, should_pause=should_pause)
    model.eval()
    yield "done", done_event(record, folder)
