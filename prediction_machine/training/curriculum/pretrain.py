"""Pre-training: teach a tiny decoder to predict the next token of Shakespeare, step by step.

The loop is an iterator of (event, data) pairs, so the CLI draws progress bars from it, the
web page draws live curves from it, and the tests read numbers from it:

    start -> merge x N -> tokenizer -> step, step, ... (eval, sample, checkpoint now and then) -> done

One optimizer step: draw a batch of windows from the corpus, predict every next token,
measure the cross-entropy loss, backpropagate, clip the gradient, take an AdamW step with
the learning rate of the schedule (linear warm-up, then a cosine decay).

Nothing trained is lost: a run lives in its own folder (runs.py) and is checkpointed
atomically every `checkpoint_every` steps, on pause, on stop and at the end; a run can be
resumed from its folder after a crash or a restart and continues with the same batches it
would have drawn.

Scale-out: under `torchrun --nproc_per_node=N -m prediction_machine pretrain ...` every
process draws the same global batch, takes its own slice of it, and DistributedDataParallel
averages the gradients (distributed.py): the same update as one process would make.

The loop itself (schedule, step, pause, record, cadence) is loop.train_loop, the one every
trainer here shares; this file gives it the batch, the loss and the evaluation.

The shipped base model (data/shakespeare-base) is the recipe shakespeare-base (recipes.py), its
weights, tokenizer and record copied without the optimizer state (twice the model's size); its
run.json records what the run cost:

    prediction-machine pretrain --recipe shakespeare-base --out /tmp/shakespeare-run
    cp /tmp/shakespeare-run/{model.safetensors,tokenizer.json,prediction-machine.json,run.json} \
       prediction_machine/data/shakespeare-base/

References: Karpathy's nanoGPT train.py and llm.c (the loop, the schedule, FLOPs ~ 6 N D);
Kaplan et al. 2020 "Scaling Laws for Neural Language Models" (the 6 N D estimate);
Loshchilov & Hutter 2019 (AdamW) and 2017 (cosine schedule).

Shape letters: B batch, T context (window length), V vocabulary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from prediction_machine.config import PRESETS as MODEL_PRESETS
from prediction_machine.config import ModelConfig, TrainSettings
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import weights
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum import bpe, distributed, snapshots
from prediction_machine.training.curriculum.checkpoint import clean_run, load_resume, save_run
from prediction_machine.training.curriculum.corpus import Corpus, encode_corpus, shakespeare, user_text
from prediction_machine.training.curriculum.loop import (
    Event,
    Step,
    done_event,
    fit_warmup,
    lr_schedule,
    make_optimizer,
    new_record,
    train_loop,
)
from prediction_machine.training.curriculum.runs import read_run

MIN_CONTEXT = 8  # the shortest window a run on a short text of its own picks for itself


@dataclass(frozen=True)
class TrainConfig(TrainSettings):
    model: str = "tiny"  # a preset from config.PRESETS; its vocab_size is replaced by the tokenizer's
    layers: int | None = None  # override the preset's n_layers (None = keep it)
    width: int | None = None  # override the preset's d_model (and d_ff = 3 x width)
    tokenizer: str = "bpe"  # "bpe" (our own merges) or "char" (the 256 bytes alone, for comparison)
    vocab_size: int = 1024  # BPE vocabulary: 256 bytes + merges + 3 chat control tokens
    bpe_chars: int = 300_000  # BPE is learned from this much of the training text (a few seconds)
    corpus_chars: int | None = None  # use only the first N characters of Shakespeare (None = all)
    steps: int = 600  # optimizer steps in the whole run
    batch_size: int = 16  # windows per step (the global batch under torchrun)
    context: int = 128  # tokens per window; at most the preset's max_seq_len
    lr: float = 3e-3  # peak learning rate, reached after warm-up
    warmup: int = 30  # steps of linear warm-up from 0
    weight_decay: float = 0.1  # AdamW decay on matrices (not on norms)
    eval_every: int = 50  # measure train and held-out loss every N steps
    eval_batches: int = 8  # ... on this many fixed batches of each
    sample_every: int = 50  # write a sample from the fixed prompt every N steps
    sample_tokens: int = 60
    sample_prompt: str = "Romeo:\n"
    checkpoint_every: int = 100
    seed: int = 1337


# Settings no shipped model was made with (the shipped one is the recipe shakespeare-base, recipes.py).
PRESETS: dict[str, TrainConfig] = {
    # What the page starts (live_config): short enough to watch to the end; the learner may change
    # some of it. BPE on 200,000 characters and 4 evaluation batches keep the waits short.
    "live": TrainConfig(vocab_size=512, bpe_chars=200_000, corpus_chars=1_500_000, steps=300, batch_size=12,
                        context=64, warmup=30, eval_every=25, eval_batches=4, sample_every=25,
                        checkpoint_every=50),
    # The same loop at GPU size.
    "small": TrainConfig(model="small", vocab_size=4096, bpe_chars=1_000_000, steps=5000, batch_size=64,
                         context=256, lr=1e-3, warmup=200, eval_every=250, sample_every=250,
                         checkpoint_every=500),
}


def live_config(**choices) -> TrainConfig:
    """The page's run: PRESETS["live"] with the learner's choices (steps, batch size, ...).

    A shorter run warms up for a tenth of its steps (loop.fit_warmup), and checkpoints come
    no more often than evaluations. Example: steps=100, eval_every=60 -> warmup 10, checkpoint_every 60.
    """
    cfg = replace(PRESETS["live"], **choices)
    return fit_warmup(replace(cfg, checkpoint_every=max(cfg.eval_every, PRESETS["live"].checkpoint_every)))


# ----------------------------------------------------------------------------- pieces of the loop


def init_weights(model: Transformer, seed: int) -> None:
    """GPT-2's recipe: N(0, 0.02) everywhere; the layers that write into the residual stream are
    scaled by 1/sqrt(2 L), so the stream does not grow with depth."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2:
                continue  # RMSNorm gains stay at 1
            into_stream = name.endswith(("attn.o.weight", "mlp.down.weight"))
            std = 0.02 / math.sqrt(2 * model.cfg.n_layers) if into_stream else 0.02
            p.copy_(torch.randn(p.shape, generator=g) * std)


def get_batch(data: torch.Tensor, batch: int, context: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch` random windows; x is each window, y the same window shifted one token to the left.

    Seeded per step, so a resumed run (or another process under torchrun) draws the same batch.
    """
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(data) - context - 1, (batch,), generator=g)  # (B,)
    offsets = torch.arange(context + 1)  # (T+1,)
    window = data[starts[:, None] + offsets]  # (B, T+1)
    return window[:, :-1], window[:, 1:]  # (B, T), (B, T)


def next_token_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits, _ = model(x)  # (B, T, V)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())  # mean over B*T predictions


@torch.no_grad()
def estimate_loss(model: Transformer, data: torch.Tensor, cfg: TrainConfig, seed: int) -> float:
    """Mean loss over the same `eval_batches` batches every time, so the curve is comparable."""
    losses = []
    for i in range(cfg.eval_batches):
        x, y = get_batch(data, cfg.batch_size, cfg.context, seed + i)
        losses.append(next_token_loss(model, x, y).item())
    return sum(losses) / len(losses)


def sample_text(model: Transformer, tok: Tokenizer, prompt: str, n: int, seed: int,
                temperature: float = 0.8) -> str:
    ids = tok.encode_ids(prompt)
    out = [s.id for s in generate(model, ids, SamplingParams(temperature=temperature), n, seed=seed, top_n=1)]
    return tok.decode(out)


def build_tokenizer(corpus: Corpus, cfg: TrainConfig) -> Iterator[Event | bpe.BPE]:
    """Learn the vocabulary, yielding merge events; the last item is the BPE itself."""
    merges = []
    n = 0 if cfg.tokenizer == "char" else cfg.vocab_size - 256 - len(bpe.SPECIALS)
    for m in bpe.train(corpus.train[: cfg.bpe_chars], n):
        merges.append(m)
        if m.rank < 48:  # the first merges are the interesting ones; the rest go by silently
            yield "merge", m.to_dict()
    yield bpe.BPE(merges)


# ----------------------------------------------------------------------------- the run


def pretrain(
    cfg: TrainConfig,
    folder: Path,
    corpus: Corpus | None = None,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
    resume: bool = False,
    extend_to: int | None = None,
) -> Iterator[Event]:
    """Train a tiny decoder from scratch, yielding events.

    With resume=True, continue the run in `folder` with its own settings (`cfg` is ignored),
    up to its planned steps or to `extend_to` if that is larger.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = distributed.setup_distributed()
    if resume and d.main:
        clean_run(folder)  # what a crash mid-write left behind
    previous = read_run(folder) if resume else None
    if resume and previous is None:
        raise FileNotFoundError(f"{folder} holds no run to resume")
    if previous:
        cfg = TrainConfig.from_dict(previous["config"])
        cfg = replace(cfg, steps=max(cfg.steps, extend_to or 0))
    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} must divide evenly over {d.world} processes")
    if corpus is None:
        user_file = folder / "corpus.txt"
        if previous and user_file.is_file():
            corpus = user_text(user_file.read_text(encoding="utf-8"))
        else:
            corpus = shakespeare(cfg.corpus_chars)
    elif corpus.name != "shakespeare" and d.main:
        text = corpus.train + corpus.val  # kept, so a resumed run trains on the same text
        weights.atomic_write_bytes(folder / "corpus.txt", lambda t: Path(t).write_text(text, "utf-8"))

    # -- 1. the vocabulary
    t0 = time.perf_counter()
    if previous:
        tok = Tokenizer((folder / "tokenizer.json").read_text())
        merges_shown = previous.get("merges", [])
        if d.main:
            yield from (("merge", m) for m in merges_shown)  # replayed for the page, not relearned
    else:
        merges_shown = []
        for item in build_tokenizer(corpus, cfg):
            if isinstance(item, bpe.BPE):
                tok = Tokenizer(item.tokenizer_json())
            else:
                merges_shown.append(item[1])
                if d.main:
                    yield item
    bpe_seconds = time.perf_counter() - t0
    train_ids = encode_corpus(tok, corpus.train)  # (N,)
    val_ids = encode_corpus(tok, corpus.val)  # (M,)
    # A short text of the learner's own may not fill the asked window: the run reads a shorter one
    # (said in the tokenizer event), so every text past corpus.MIN_USER_CHARS trains.
    asked, fits = cfg.context, min(len(train_ids), len(val_ids)) - 2  # a window + its next token per split
    if fits < cfg.context:
        if fits < MIN_CONTEXT:
            raise ValueError(f"this text gives only {len(val_ids)} tokens to hold out for checking the model "
                             "(its last tenth), too few to learn from: add more text")
        cfg = replace(cfg, context=fits)
    sample = corpus.val[:20000]
    tokenizer_info = {
        "kind": cfg.tokenizer,
        "vocab_size": tok.vocab_size,
        "merges": tok.vocab_size - 256 - len(bpe.SPECIALS),
        "bytes_per_token": bpe.compression_ratio(sample, len(tok.encode_ids(sample))),
        "train_tokens": len(train_ids),
        "val_tokens": len(val_ids),
        "context": cfg.context,  # tokens the model reads at a time: `context_asked`, or fewer on a short text
        "context_asked": asked,
        "seconds": round(bpe_seconds, 2),
    }
    if d.main:
        yield "tokenizer", tokenizer_info

    # -- 2. the model
    mcfg: ModelConfig = replace(MODEL_PRESETS[cfg.model], vocab_size=tok.vocab_size)
    if cfg.layers:
        mcfg = replace(mcfg, n_layers=cfg.layers)
    if cfg.width:
        mcfg = replace(mcfg, d_model=cfg.width, d_ff=3 * cfg.width)
    if cfg.context > mcfg.max_seq_len:
        raise ValueError(f"context {cfg.context} is longer than the model's {mcfg.max_seq_len}")
    torch.manual_seed(cfg.seed)
    model = Transformer(mcfg)
    init_weights(model, cfg.seed)
    opt = make_optimizer(model, cfg)
    params = sum(p.numel() for p in model.parameters())
    record = new_record("pretrain", cfg, params, corpus=corpus.describe(), tokenizer=tokenizer_info,
                        merges=merges_shown)
    restored = False
    if previous:  # weights, optimizer and record from one checkpoint: tokens and history go on exactly
        record, _, restored = load_resume(folder, model, opt)
    record.update(config=cfg.to_dict(), parameters=params, status="running")
    train_model = distributed.wrap(model, d)  # the loss goes through DDP under torchrun
    if d.main:
        yield "start", {
            "folder": str(folder), "config": cfg.to_dict(), "model": mcfg.to_dict(), "parameters": params,
            "corpus": corpus.describe(), "tokenizer": tokenizer_info,
            "resumed_from": record["step"] if previous else None,
            "optimizer_restored": restored, "processes": d.world,
            "lr_schedule": lr_schedule(cfg),
            "history": record["history"] if previous else None,
        }

    # -- 3. the loop: every process draws the same global batch and trains on its own slice of it
    def step_fn(seed: int) -> Step:
        x, y = get_batch(train_ids, cfg.batch_size, cfg.context, seed)  # (B, T) each
        x, y = distributed.my_slice(x, d), distributed.my_slice(y, d)  # (B/world, T) each
        loss = next_token_loss(train_model, x, y)
        return Step(loss, cfg.batch_size * cfg.context, loss=distributed.all_mean(loss.item(), d))

    def evaluate() -> dict:
        return {"train_loss": estimate_loss(model, train_ids, cfg, 7),
                "eval_loss": estimate_loss(model, val_ids, cfg, 11)}

    def sample() -> dict:
        return {"prompt": cfg.sample_prompt,
                "text": sample_text(model, tok, cfg.sample_prompt, cfg.sample_tokens, cfg.seed)}

    def save(status: str) -> Event:
        record["status"] = status
        if d.main:
            save_run(folder, model, tok, opt, record, {"recipe": cfg.to_dict()})
        return "checkpoint", {"step": record["step"], "folder": str(folder), "status": status}

    # snapshots of the inside at a fixed cadence (snapshots.py), kept in the run folder
    recorder = snapshots.Recorder(folder if d.main else None, model, tok, train_ids, cfg.steps,
                                  resumed_at=record["step"])
    events = train_loop(cfg, model, opt, record, step_fn, evaluate, sample if d.main else None, save,
                        should_stop, should_pause, recorder.take if d.main else None, recorder.every)
    if d.main:
        yield from events
        yield "done", done_event(record, folder)
    else:
        for _ in events:  # every process trains; only the first one reports
            pass
    distributed.finish(d)  # rank 0 has written the checkpoint; everyone leaves together
