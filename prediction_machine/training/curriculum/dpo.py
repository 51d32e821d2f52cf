"""Preference tuning with DPO: move the chat model towards the answers people chose.

Fine-tuning showed the model good answers. Preference tuning shows it pairs: for one prompt,
an answer people chose and one they rejected, and pushes the first up relative to the second.
Direct Preference Optimisation (Rafailov et al. 2023) does it with one loss and no reward model:

    loss = -log σ(β · ((log π(chosen) - log π_ref(chosen)) - (log π(rejected) - log π_ref(rejected))))

π is the model being trained (the policy); π_ref is a frozen copy of where it started (the
fine-tuned model); log π(answer) is the sum of the log-probabilities of the answer's tokens only,
the prompt masked out exactly as in fine-tuning (loop.pad_rows). β · (log π - log π_ref) is the
answer's "implicit reward"; the loss wants the chosen answer's reward above the rejected one's.

β, in plain words: how tightly the model is held to where it started. The loss is satisfied once
β x (how much more the chosen answer gained than the rejected one) is large, so a large β (0.5)
is satisfied by small moves and keeps the model close to the reference; a small β (0.05) lets it
drift far for the same loss. It is the strength of the KL leash in the objective DPO solves.

The loop is loop.train_loop, the one every trainer here shares; this file gives it the pairs and
the loss. Every step reports the loss, both rewards and their margin; every evaluation the held-out
preference accuracy and how far the policy has moved (mean per-token KL on held-out answers).
The tokens a run counts are the answers' tokens, chosen and rejected, the positions the loss reads.

One addition, a setting (sft_weight, 0 turns it off): the loss also counts the fine-tuning loss of
the chosen answers, as Pang et al. 2024 ("Iterative Reasoning Preference Optimization") and the
Llama 3 report do. Pure DPO only asks chosen to gain *relative* to rejected, and both may fall; in
an earlier measurement here (an earlier version of the data) pure DPO lowered the held-out factual
accuracy from 98.6% to 88.6% and left every over-refusal in place: it pushed "I cannot help" down
without making anything else likely.

Shape letters: B pairs, T answer-and-prompt length, V vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from prediction_machine.config import TrainSettings
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import finetune as ft
from prediction_machine.training.curriculum import preferences
from prediction_machine.training.curriculum.checkpoint import save_run
from prediction_machine.training.curriculum.loop import (
    Event,
    Step,
    done_event,
    lr_schedule,
    make_optimizer,
    new_record,
    pad_rows,
    train_loop,
)
from prediction_machine.training.curriculum.preferences import Pair


@dataclass(frozen=True)
class DPOConfig(TrainSettings):
    steps: int = 40  # optimizer steps: enough for the shipped pairs (measured in docs/curriculum.md)
    batch_size: int = 32  # pairs per step
    lr: float = 3e-4  # lower than fine-tuning: small moves away from a model that already answers
    beta: float = 0.1  # how tightly the policy is held to the reference (see the module docstring)
    sft_weight: float = 1.0  # plus this x the fine-tuning loss on the chosen answers (0 = pure DPO; below)
    warmup: int = 5
    eval_every: int = 1  # held-out accuracy and KL every N steps (every step by default: it is cheap)
    seed: int = 14


RECIPE = DPOConfig()  # the defaults are the recipe shakespeare-dpo (recipes.py; tests/test_recipes.py)


# ----------------------------------------------------------------------------- the loss


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean DPO loss over a batch of pairs, and each pair's implicit rewards. Inputs (B,) each.

    Example (β = 0.1): policy -2, -6; reference -3, -5 -> rewards 0.1, -0.1, margin 0.2,
    loss -log σ(0.2) = 0.598139.
    """
    chosen_reward = beta * (policy_chosen - ref_chosen)  # (B,)
    rejected_reward = beta * (policy_rejected - ref_rejected)  # (B,)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    return loss, chosen_reward, rejected_reward


def answer_logps(model: Transformer, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """log π(answer | prompt): the log-probabilities of the answer's tokens, summed. (B, T) each -> (B,)"""
    logits, _ = model(x)  # (B, T, V)
    logp = logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (logp * m).sum(-1)  # (B,): the prompt and the padding count zero


def pair_batch(tok: Tokenizer, pairs: list[Pair], context: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chosen answers, then the rejected ones, as one padded batch: (2B, T) each."""
    rows = [encode(tok, p.prompt, p.chosen) for p in pairs]
    rows += [encode(tok, p.prompt, p.rejected) for p in pairs]
    return pad_rows(rows, context)


def encode(tok: Tokenizer, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """Ids and the answer-only mask, exactly as fine-tuning builds them (finetune.encode)."""
    return ft.encode(tok, ft.Example(0, "pair", "train", prompt, answer))


# ----------------------------------------------------------------------------- measuring


@torch.no_grad()
def fitting_pairs(sft_folder: Path, rows: list[dict]) -> list[Pair]:
    """preferences.learner_pairs, and each prompt with each of its answers within the model's context.

    Characters are bounded by the schema, but tokens decide: 200 characters can be 400 tokens. A
    pair too long would be cut short in training and break the probes, so it is refused here, before
    a job starts, with its place and the limit.
    """
    pairs = preferences.learner_pairs(rows)
    folder = Path(sft_folder)
    tok = Tokenizer((folder / "tokenizer.json").read_text(encoding="utf-8"))
    context = json.loads((folder / "prediction-machine.json").read_text())["config"]["max_seq_len"]
    for n, p in enumerate(pairs):
        for field, answer in (("chosen", p.chosen), ("rejected", p.rejected)):
            size = len(encode(tok, p.prompt, answer)[0])
            if size > context:
                raise preferences.PairError(
                    f"pairs[{n}].{field}: the prompt and this answer are {size} tokens with the chat "
                    f"markers; the model reads at most {context}")
    return pairs


def preference_accuracy(model: Transformer, tok: Tokenizer, pairs: list[Pair]) -> float:
    """How often the model gives the chosen answer a higher log-probability than the rejected one.

    It needs no reference, so the base, the fine-tuned and the DPO model are measured the same way.
    """
    x, y, m = pair_batch(tok, pairs, model.cfg.max_seq_len)
    logp = answer_logps(model, x, y, m)  # (2B,)
    return (logp[: len(pairs)] > logp[len(pairs):]).float().mean().item()


class HeldOut:
    """The held-out pairs, with the reference's numbers computed once (the reference never changes)."""

    @torch.no_grad()
    def __init__(self, ref: Transformer, tok: Tokenizer, pairs: list[Pair]):
        self.n = len(pairs)
        self.x, self.y, self.m = pair_batch(tok, pairs, ref.cfg.max_seq_len)  # (2B, T) each
        logits, _ = ref(self.x)  # (2B, T, V)
        self.ref_logprobs = logits.log_softmax(-1)  # (2B, T, V)
        ref_token_logps = self.ref_logprobs.gather(-1, self.y.unsqueeze(-1)).squeeze(-1)  # (2B, T)
        self.ref_logps = (ref_token_logps * self.m).sum(-1)  # (2B,)

    @torch.no_grad()
    def measure(self, model: Transformer, beta: float) -> dict:
        logits, _ = model(self.x)  # (2B, T, V)
        logprobs = logits.log_softmax(-1)  # (2B, T, V)
        logp = (logprobs.gather(-1, self.y.unsqueeze(-1)).squeeze(-1) * self.m).sum(-1)  # (2B,)
        # KL(π || π_ref) of the next-token distributions at every answer position,
        # averaged over those positions.
        kl = (logprobs.exp() * (logprobs - self.ref_logprobs)).sum(-1)  # (2B, T)
        n = self.n
        _, rc, rr = dpo_loss(logp[:n], logp[n:], self.ref_logps[:n], self.ref_logps[n:], beta)
        return {"accuracy": (logp[:n] > logp[n:]).float().mean().item(),
                "reward_accuracy": (rc > rr).float().mean().item(),
                "margin": (rc - rr).mean().item(), "kl": ((kl * self.m).sum() / self.m.sum()).item()}


@torch.no_grad()
def token_probs(model: Transformer, tok: Tokenizer, prompt: str, answer: str) -> dict:
    """The probability of each of an answer's tokens (and the end marker), and their summed log."""
    x, y, m = pad_rows([encode(tok, prompt, answer)])  # (1, T) each
    logits, _ = model(x)  # (1, T, V)
    logp = logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)[0]  # (T,)
    keep = m[0].bool()
    return {"tokens": [{**tok.token(i).to_dict(), "prob": p.exp().item()}
                       for i, p in zip(y[0][keep].tolist(), logp[keep], strict=True)],
            "logp": logp[keep].sum().item()}


def probe(model: Transformer, tok: Tokenizer, probes: list[dict]) -> list[dict]:
    """For each {prompt, answer, rated}: the greedy answer now, and the probabilities of the given answer."""
    model.eval()
    out = [{**p, "greedy": ft.answer(model, tok, p["prompt"]),
            **token_probs(model, tok, p["prompt"], p["answer"])}
           for p in probes]
    model.train()
    return out


# ----------------------------------------------------------------------------- the loop


def dpo(
    cfg: DPOConfig,
    sft_folder: Path,
    folder: Path,
    train: list[Pair] | None = None,
    held: list[Pair] | None = None,
    probes: list[dict] | None = None,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
    sft_name: str | None = None,
) -> Iterator[Event]:
    """DPO of a fine-tuned checkpoint on preference pairs (default: the project's), yielding events.

    `probes` ({prompt, answer, rated}) are measured before and after: the answer's token probabilities.
    """
    model, tok, _ = ft.load_trainable(Path(sft_folder))
    ref, _, _ = ft.load_trainable(Path(sft_folder))
    ref.eval().requires_grad_(False)  # frozen: the reference is where the policy started, and stays there
    train = train if train is not None else preferences.split("train")
    held = held if held is not None else preferences.split("eval")
    ctx, params = model.cfg.max_seq_len, sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model, cfg)
    heldout = HeldOut(ref, tok, held)
    first = heldout.measure(model, cfg.beta)
    record = new_record("dpo", cfg, params, base=sft_name or str(sft_folder),
                        data={"train": len(train), "eval": len(held)})
    record["history"]["margin"] = []
    record["history"]["eval"].append({"step": 0, **first})
    yield "start", {"folder": str(folder), "config": cfg.to_dict(), "parameters": params,
                    "data": record["data"],
                    "lr_schedule": lr_schedule(cfg)}
    yield "eval", {"step": 0, **first}
    if probes:
        yield "before", {"probes": probe(model, tok, probes)}
    extra = {"chat_template": ft.CHAT_TEMPLATE, "base": record["base"]}

    def step_fn(seed: int) -> Step:
        if len(train) <= cfg.batch_size:
            batch = train  # a learner's handful of pairs: all of them, every step
        else:
            g = torch.Generator().manual_seed(seed)
            batch = [train[i] for i in torch.randint(0, len(train), (cfg.batch_size,), generator=g).tolist()]
        x, y, m = pair_batch(tok, batch, ctx)  # (2B, T) each
        n = len(batch)
        with torch.no_grad():
            ref_logp = answer_logps(ref, x, y, m)  # (2B,)
        logp = answer_logps(model, x, y, m)  # (2B,)
        loss, rc, rr = dpo_loss(logp[:n], logp[n:], ref_logp[:n], ref_logp[n:], cfg.beta)
        sft_loss = -(logp[:n] / m[:n].sum(-1)).mean()  # mean cross-entropy per token of the chosen answers
        margin = (rc - rr).mean().item()
        record["history"]["margin"].append(round(margin, 5))
        return Step(loss + cfg.sft_weight * sft_loss, int(m.sum()), loss=loss.item(), extra={
            "sft_loss": sft_loss.item(), "reward_chosen": rc.mean().item(),
            "reward_rejected": rr.mean().item(),
            "margin": margin, "batch_accuracy": (rc > rr).float().mean().item()})

    def save(status: str) -> Event:
        record["status"] = status
        save_run(Path(folder), model, tok, opt, record, extra)  # one checkpoint folder, renamed into place
        return "checkpoint", {"step": record["step"], "folder": str(folder), "status": status}

    def evaluate() -> dict:
        return heldout.measure(model, cfg.beta)

    yield from train_loop(cfg, model, opt, record, step_fn, evaluate, None, save,
                          should_stop, should_pause)
    if probes:
        yield "after", {"probes": probe(model, tok, probes)}
    yield "done", done_event(record, folder, first=first, last=record["history"]["eval"][-1])


def shipped_summary() -> dict | None:
    """The shipped shakespeare-dpo's record at a glance (cost, data, held-out numbers first and last)."""
    from prediction_machine.model.models import shipped_checkpoint
    from prediction_machine.training.curriculum.runs import read_run

    r = read_run(shipped_checkpoint("shakespeare-dpo"))
    if r is None:
        return None
    evals = r["history"]["eval"]
    totals = {k: r.get(k) for k in ("step", "tokens", "seconds", "flops", "data", "config")}
    return totals | {"first": evals[0], "last": evals[-1]}
