"""Training the pixel model and the note model: the curriculum's loop, with another tokenizer.

The same decoder (model/transformer.py) at a tiny size, the same optimizer step, schedule and
pause/stop handling (training/curriculum/loop.py). Only the data differs: each modality's
module (digits.py, melody.py) hands over batches of token ids and a way to draw a sample.

    start -> step, step, ... (eval and sample now and then) -> done

The shipped models were made with `prediction-machine sequences-train digits --out F` and
`... melody --out F` on 2 busy CPU cores; their recipe.json records the time and FLOPs.
FLOPs are estimated as 6 x parameters x tokens (Kaplan et al. 2020), as for the curriculum.

Shape letters: B batch, T sequence length, V vocabulary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from prediction_machine.config import ModelConfig, Settings
from prediction_machine.model.transformer import Transformer
from prediction_machine.sequences import checkpoint, digits, melody
from prediction_machine.sequences.nll import mean_nll
from prediction_machine.training.curriculum.loop import (
    Event,
    answer_loss,
    due,
    fit_warmup,
    lr_at,
    lr_schedule,
    make_optimizer,
    optimizer_step,
    pad_rows,
    record_step,
    wait_while_paused,
)
from prediction_machine.training.curriculum.pretrain import init_weights

TASKS = {"digits": digits, "melody": melody}


@dataclass(frozen=True)
class SeqTrainConfig(Settings):
    kind: str = "digits"  # "digits" or "melody"
    d_model: int = 64  # a tiny decoder: about 0.2M parameters
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    d_ff: int = 192
    steps: int = 1500  # optimizer steps
    batch_size: int = 32  # sequences per step (whole images, or whole tunes)
    lr: float = 3e-3  # peak learning rate after warm-up
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 100  # held-out NLL every N steps
    sample_every: int = 100  # a sample every N steps (noise at first, then digits or tunes)
    seed: int = 1337


RECIPES = {
    "digits": SeqTrainConfig(kind="digits"),
    "melody": SeqTrainConfig(kind="melody", steps=800, batch_size=16),
}


def live_config(kind: str, **choices) -> SeqTrainConfig:
    """The page's short run: the shipped recipe with fewer steps (and a warm-up a tenth as long)."""
    if kind not in TASKS:
        raise ValueError(f"kind must be digits or melody, got {kind!r}")
    return fit_warmup(replace(RECIPES[kind], **choices))


def model_config(cfg: SeqTrainConfig) -> ModelConfig:
    task = TASKS[cfg.kind]
    return ModelConfig(vocab_size=task.VOCAB, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                       n_kv_heads=cfg.n_kv_heads, d_ff=cfg.d_ff, max_seq_len=task.CONTEXT, rope_base=10000.0)


def train(cfg: SeqTrainConfig, folder: Path | None = None, should_stop: Callable[[], bool] | None = None,
          should_pause: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Train one sequence model from scratch, yielding events; save it to `folder` if given."""
    task = TASKS[cfg.kind]
    torch.manual_seed(cfg.seed)
    model = Transformer(model_config(cfg))
    init_weights(model, cfg.seed)
    opt = make_optimizer(model, cfg)
    params = sum(p.numel() for p in model.parameters())
    record = {"kind": cfg.kind, "recipe": cfg.to_dict(), "parameters": params, "step": 0, "tokens": 0,
              "seconds": 0.0, "flops": 0.0, "history": {"step": [], "loss": [], "lr": [], "eval": []}}
    yield "start", {"kind": cfg.kind, "config": cfg.to_dict(), "model": model.cfg.to_dict(), "parameters": params,
                    "data": task.describe_data(), "lr_schedule": lr_schedule(cfg)}
    held_out = task.held_out_rows()
    step, seconds, reason = 0, 0.0, "finished"
    while step < cfg.steps:
        if (yield from wait_while_paused(step, should_pause, should_stop)):
            reason = "stopped"
            break
        t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        x, y, m = pad_rows(task.training_rows(cfg.batch_size, cfg.seed * 1_000_003 + step))  # (B, T) each
        model.train()
        loss = answer_loss(model, x, y, m)
        optimizer_step(model, opt, loss, lr, cfg.grad_clip)
        step += 1
        seconds += time.perf_counter() - t0
        yield "step", record_step(record, step, cfg.steps, loss.item(), lr, int(m.sum()), seconds, 6 * params)
        if due(step, cfg.eval_every, cfg.steps):
            ev = {"step": step, "held_out_nll": mean_nll(model, held_out)}
            record["history"]["eval"].append(ev)
            yield "eval", ev
        if due(step, cfg.sample_every, cfg.steps):
            model.eval()
            yield "sample", {"step": step, **task.training_sample(model, cfg.seed + step)}
    model.eval()
    if folder is not None:
        checkpoint.save(folder, model, {**record, "status": reason}, task.extra_tensors())
    yield "done", {"reason": reason, "step": step, "tokens": record["tokens"], "seconds": seconds,
                   "flops": record["flops"], "parameters": params, "folder": str(folder) if folder else None,
                   "held_out_nll": record["history"]["eval"][-1]["held_out_nll"] if record["history"]["eval"] else None}
