"""The one training loop, and the one record every run keeps.

Pre-training, fine-tuning, DPO, LoRA and the sequence models all train through `train_loop`:

    pause? stop? -> learning rate from the schedule -> the trainer's loss -> backward -> clip -> AdamW step
                 -> record -> evaluate, sample, checkpoint when due -> ... -> checkpoint -> done

Why one loop and not five parallel ones: the trainers differ only in their batch, their loss and
what they measure, while the rest must mean the same in every section, and parallel copies drift
(a count that means one thing here and another there, an eval named differently in each). So the
loop owns pause and stop, the step timer, the batch seed (`cfg.seed * 1_000_003 + step`, here
only), the record and its events, and the cadence of evaluation, samples and checkpoints. A trainer
hands over `step_fn(seed) -> Step` (its batch and loss), `evaluate() -> dict`, `sample() -> dict`
and `save(status)`, a checkpoint. The loop stays one screen: read it top to bottom.

The record (run.json in every run folder) and the events use one schema:

    kind, config, parameters, step, tokens, seconds, flops, status,
    history: {step, loss, lr, eval: [{step, eval_loss?, ...}], samples: [{step, ...}]}

- tokens: the tokens the model was trained to predict, the positions the loss counts. Padding,
  fine-tuning's prompts and DPO's reference pass are computed but not counted.
- flops: 6 x parameters x tokens (Kaplan et al. 2020: 2 per weight forward, 4 backward), an
  estimate of the training compute those tokens cost.
- eval_loss: the loss on held-out data, whatever the data (text, answers, pixels, notes).

References: Karpathy's nanoGPT train.py (the loop, the schedule, weight decay on matrices only);
Loshchilov & Hutter 2019 (AdamW) and 2017 (cosine schedule).

Shape letters: B batch, T context (window length), V vocabulary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from prediction_machine.config import TrainSettings

Event = tuple[str, dict]


# ----------------------------------------------------------------------------- the learning rate


def lr_at(step: int, cfg) -> float:
    """Linear warm-up to cfg.lr, then a cosine down to cfg.lr * min_lr_ratio at the last step.

    Example (lr=1, warmup=10, steps=110, min 0.1):
    step 0 -> 0.1, step 9 -> 1.0, step 60 -> 0.55, step 110 -> 0.1.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    low = cfg.lr * cfg.min_lr_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def lr_schedule(cfg) -> list[list[float]]:
    """About a hundred [step, lr] points of the whole schedule, for the page to draw before training."""
    return [[s, lr_at(s, cfg)] for s in range(0, cfg.steps + 1, max(1, cfg.steps // 100))]


def fit_warmup(cfg):
    """The same recipe for a shorter run: warm-up becomes a tenth of the run, at most the recipe's.

    Example (warmup 30): 300 steps -> 30, 100 steps -> 10, 5 steps -> 1.
    """
    return replace(cfg, warmup=max(1, min(cfg.warmup, cfg.steps // 10)))


# ----------------------------------------------------------------------------- the optimizer step


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only: decaying a norm's gain towards 0 is no regulariser."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    keep = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, lr: float,
                   grad_clip: float | None = None) -> None:
    """One update: set the learning rate, backpropagate, cap the gradient's norm, step.

    Capping the norm (grad_clip) means one unlucky batch cannot throw the weights far away.
    """
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()


def record_step(record: dict, step: int, steps: int, loss: float, lr: float, tokens: int, seconds: float,
                flops_per_token: float) -> dict:
    """Count a finished step into the run record (its totals and its curves); return the `step` event.

    `tokens` are the tokens this step predicted (the schema above), `seconds` the run's training time so far.
    """
    record["tokens"] += tokens
    record.update(step=step, seconds=seconds, flops=float(record["tokens"] * flops_per_token))
    h = record["history"]
    h["step"].append(step)
    h["loss"].append(round(loss, 5))
    h["lr"].append(lr)
    return {"step": step, "steps": steps, "loss": loss, "lr": lr, "tokens": record["tokens"],
            "seconds": seconds, "tokens_per_s": record["tokens"] / seconds if seconds else 0.0,
            "flops": record["flops"]}


# ----------------------------------------------------------------------------- pause and stop


def stop_requested(should_stop: Callable[[], bool] | None) -> bool:
    return bool(should_stop and should_stop())


def due(step: int, every: int, total: int) -> bool:
    """Is `step` one of the steps where something happens every `every` steps (and at the end)? 0 = never.

    >>> [s for s in range(1, 8) if due(s, 3, 7)]
    [3, 6, 7]
    """
    return every > 0 and (step % every == 0 or step == total)


def wait_while_paused(
    step: int,
    should_pause: Callable[[], bool] | None,
    should_stop: Callable[[], bool] | None,
    on_pause: Callable[[], Event] | None = None,
) -> Generator[Event, None, bool]:
    """Called before every step; returns True when the run should stop there.

    When a pause is asked for (and no stop): yield on_pause()'s event (a checkpoint, so a paused
    run is safe on disk), announce the pause, hold until resumed (a stop request also ends the
    wait), announce the resume. Use it as `if (yield from wait_while_paused(...)): break`.
    """
    if (should_pause and should_pause()) and not stop_requested(should_stop):
        if on_pause is not None:
            yield on_pause()
        yield "paused", {"step": step}
        while should_pause() and not stop_requested(should_stop):
            time.sleep(0.1)
        yield "resumed", {"step": step}
    return stop_requested(should_stop)


# ----------------------------------------------------------------------------- the answer-only loss


def pad_rows(rows: list[tuple[list[int], list[int]]], context: int | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids, 0/1 answer mask) rows -> right-padded inputs, targets and target mask, at most `context` long.

    Padding sits after the end marker, and causal attention never lets a real position see it;
    the mask drops it from the loss. Example: ids [5, 6, 7], mask [0, 1, 1] -> x [5, 6], y [6, 7], m [1, 1].
    """
    longest = max(len(ids) for ids, _ in rows)
    T = (longest if context is None else min(context, longest)) - 1
    x = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T)
    y = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T)
    m = torch.zeros(len(rows), T)  # (B, T)
    for r, (ids, mask) in enumerate(rows):
        ids, mask = ids[: T + 1], mask[: T + 1]
        n = len(ids) - 1
        x[r, :n] = torch.tensor(ids[:-1])
        y[r, :n] = torch.tensor(ids[1:])
        m[r, :n] = torch.tensor(mask[1:], dtype=torch.float)  # the mask belongs to the token predicted
    return x, y, m


def answer_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the answer's tokens only (where m is 1)."""
    logits, _ = model(x)  # (B, T, V)
    per_token = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")  # (B*T,)
    return (per_token * m.flatten()).sum() / m.sum()


# ----------------------------------------------------------------------------- the loop


@dataclass
class Step:
    """What a trainer's step function gives back; the loop does everything else."""

    objective: torch.Tensor  # the scalar that backward() minimises
    tokens: int  # the tokens this batch predicted: the positions the loss counts
    loss: float | None = None  # what the loss curve shows (None: the objective's value)
    extra: dict = field(default_factory=dict)  # more numbers for the step event (DPO's rewards, ...)


def new_record(kind: str, cfg: TrainSettings, parameters: int, **fields) -> dict:
    """A run record at step 0 in the one schema (see the module docstring); `fields` add a trainer's own."""
    return {"kind": kind, "config": cfg.to_dict(), "parameters": parameters, "step": 0, "tokens": 0,
            "seconds": 0.0, "flops": 0.0, "status": "running", **fields,
            "history": {"step": [], "loss": [], "lr": [], "eval": [], "samples": []}}


def train_loop(
    cfg: TrainSettings,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    record: dict,
    step_fn: Callable[[int], Step],
    evaluate: Callable[[], dict] | None = None,
    sample: Callable[[], dict] | None = None,
    save: Callable[[str], Event] | None = None,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
    snapshot: Callable[[int, float | None], dict] | None = None,
    snapshot_every: int = 0,
) -> Generator[Event, None, str]:
    """Train from record["step"] to cfg.steps, yielding events; returns (and records) why it ended.

    `save(status)` writes a checkpoint and returns its event:
    called every cfg.checkpoint_every steps, on pause (a paused run is safe on disk) and at the end.
    `snapshot(step, loss)` looks inside the model (snapshots.py) and returns what it saw:
    called before the first step of a new run and every `snapshot_every` steps.
    """
    step, seconds, reason = record["step"], record["seconds"], "finished"
    flops_per_token = 6 * record["parameters"]
    h = record["history"]
    on_pause = (lambda: save("paused")) if save is not None else None
    if snapshot is not None and step == 0:
        yield "snapshot", snapshot(0, None)  # the untrained model: what the circuits grow from
    while step < cfg.steps:
        if (yield from wait_while_paused(step, should_pause, should_stop, on_pause)):
            reason = "stopped"
            break
        t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        out = step_fn(cfg.seed * 1_000_003 + step)  # seeded per step: a resumed run draws the same batches
        optimizer_step(model, opt, out.objective, lr, cfg.grad_clip)
        step += 1
        seconds += time.perf_counter() - t0
        loss = out.objective.item() if out.loss is None else out.loss
        progress = record_step(record, step, cfg.steps, loss, lr, out.tokens, seconds, flops_per_token)
        yield "step", {**progress, **out.extra}
        if evaluate is not None and due(step, cfg.eval_every, cfg.steps):
            ev = {"step": step, **evaluate()}
            h["eval"].append(ev)
            yield "eval", ev
        if sample is not None and due(step, cfg.sample_every, cfg.steps):
            s = {"step": step, **sample()}
            h["samples"].append(s)
            yield "sample", s
        if snapshot is not None and due(step, snapshot_every, cfg.steps):
            yield "snapshot", snapshot(step, loss)
        if save is not None and due(step, cfg.checkpoint_every, cfg.steps) and step < cfg.steps:
            yield save("running")
    record["status"] = reason
    if save is not None:
        yield save(reason)
    return reason


def done_event(record: dict, folder, **fields) -> dict:
    """The `done` event every trainer ends with: the run's totals and its last eval_loss (None if none)."""
    evals = [e for e in record["history"]["eval"] if "eval_loss" in e]
    return {"reason": record["status"], "step": record["step"], "tokens": record["tokens"],
            "seconds": record["seconds"], "flops": record["flops"], "parameters": record["parameters"],
            "folder": str(folder) if folder is not None else None,
            "eval_loss": evals[-1]["eval_loss"] if evals else None, **fields}
