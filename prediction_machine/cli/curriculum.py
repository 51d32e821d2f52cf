"""`prediction-machine pretrain` and `prediction-machine finetune`: the curriculum in a terminal.

    prediction-machine pretrain --recipe shakespeare-base --out /tmp/base    # rebuilds the shipped model
    prediction-machine pretrain --text my-notes.txt --steps 200        # your own text
    prediction-machine pretrain --preset live                           # the page's short run
    prediction-machine pretrain --resume ~/.local/share/prediction-machine/runs/RUN
    prediction-machine finetune --recipe shakespeare-chat --out /tmp/chat   # 600 steps, as shipped
    prediction-machine finetune --steps 150                            # the page's quick run
    prediction-machine generate --model prediction_machine/data/shakespeare-base --raw "Romeo:"

    torchrun --nproc_per_node=2 -m prediction_machine pretrain --recipe shakespeare-base --steps 20

Both commands show a progress bar, write checkpoints into a run folder (default: a new folder
under runs_dir(), named as runs.new_run_folder names it for the page too), and print one
JSON line per event with --json.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path


class PresetNames:
    """pretrain's preset names for --preset, looked up only when argparse checks or lists them:
    building the parser must not import PyTorch (`serve` answers before it is imported)."""

    def _names(self) -> list[str]:
        from prediction_machine.training.curriculum.pretrain import PRESETS

        return [*PRESETS, "shakespeare"]  # "shakespeare": the recipe shakespeare-base's older name

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, name) -> bool:
        return name in self._names()


def recipe_option(s, trainer: str, default: str | None) -> None:
    """--recipe NAME: one of the named recipes that rebuild the shipped models (curriculum/recipes.py)."""
    import argparse

    from prediction_machine.training.curriculum import recipes

    def check(name: str) -> str:
        try:
            return recipes.check(name, trainer)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    s.add_argument("--recipe", type=check, default=default, metavar="NAME",
                   help=f"the settings a shipped model was made with: {', '.join(recipes.names(trainer))} "
                        "(--steps N overrides its step count)" + (f" (default {default})" if default else ""))


def register(sub) -> None:
    from prediction_machine.cli.circuits import register as register_snapshots

    register_snapshots(sub)  # `snapshots RUN`: what a pre-training run grew inside
    s = sub.add_parser("pretrain",
                       help="pre-train a tiny GPT on Shakespeare (or your text), writing checkpoints")
    recipe_option(s, "pretrain", None)
    s.add_argument("--preset", choices=PresetNames(), default=None, metavar="PRESET",
                   help="settings no shipped model was made with: %(choices)s "
                        "(default: --recipe shakespeare-base)")
    s.add_argument("--text", type=Path, default=None,
                   help="train on this UTF-8 text file instead of Shakespeare")
    s.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    s.add_argument("--batch-size", type=int, default=None, help="windows per step (default: the recipe's)")
    s.add_argument("--context", type=int, default=None, help="tokens per window (default: the recipe's)")
    s.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    s.add_argument("--vocab-size", type=int, default=None, help="BPE vocabulary size (default: the recipe's)")
    s.add_argument("--tokenizer", choices=["bpe", "char"], default=None,
                   help="bpe (default) or char (bytes alone)")
    s.add_argument("--corpus-chars", type=int, default=None,
                   help="use only the first N characters of Shakespeare")
    s.add_argument("--seed", type=int, default=None, help="seed of the weights and the batches")
    s.add_argument("--layers", type=int, default=None, help="override the model preset's number of layers")
    s.add_argument("--width", type=int, default=None, help="override the model preset's width (d_model)")
    s.add_argument("--eval-every", type=int, default=None, help="measure train/val loss every N steps")
    s.add_argument("--sample-every", type=int, default=None, help="write a sample every N steps")
    s.add_argument("--out", type=Path, default=None,
                   help="run folder (default: a new folder under the runs directory)")
    s.add_argument("--resume", type=Path, default=None, help="continue the run in this folder")
    threads(s)
    s.add_argument("--json", action="store_true", help="print one JSON line per event")
    s.set_defaults(func=cmd_pretrain)

    s = sub.add_parser("finetune",
                       help="fine-tune the base model into a chat assistant, loss on answers only")
    recipe_option(s, "finetune", None)
    s.add_argument("--base", default=None,
                   help="base checkpoint folder (default: the shipped shakespeare-base)")
    s.add_argument("--steps", type=int, default=None, help="optimizer steps (default 150, or the recipe's)")
    s.add_argument("--batch-size", type=int, default=None, help="conversations per step (default 16)")
    s.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3)")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", type=Path, default=None,
                   help="run folder (default: a new folder under the runs directory)")
    s.add_argument("--json", action="store_true", help="print one JSON line per event")
    threads(s)
    s.set_defaults(func=cmd_finetune)


def threads(s) -> None:
    # Why 1: a tiny model's matrices are too small to split across cores, and on a busy machine the
    # threads mostly wait for each other (docs/performance.md has the measurement).
    # To use more cores, run more processes: torchrun --nproc_per_node=N.
    s.add_argument("--threads", type=int, default=1,
                   help="CPU threads per process (default 1; see the docstring)")


def set_threads(args) -> None:
    import torch

    _check(1 <= args.threads <= 256, f"--threads must be in 1..256, got {args.threads}")
    torch.set_num_threads(args.threads)


def _check(ok: bool, message: str) -> None:
    from prediction_machine.cli.output import UsageError

    if not ok:
        raise UsageError(message)


def overrides(args, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def cmd_pretrain(args) -> None:
    from prediction_machine.cli.output import UsageError
    from prediction_machine.training.curriculum import recipes
    from prediction_machine.training.curriculum.corpus import CorpusError, user_text
    from prediction_machine.training.curriculum.pretrain import PRESETS, pretrain
    from prediction_machine.training.curriculum.runs import new_run_folder, read_run

    set_threads(args)
    if args.recipe is not None and args.preset is not None:
        raise UsageError("give --recipe or --preset, not both")
    if args.preset is not None and args.preset != "shakespeare":
        start = PRESETS[args.preset]
    else:
        start = recipes.get(args.recipe or "shakespeare-base").config
    cfg = replace(start, **overrides(args, ["steps", "batch_size", "context", "lr", "vocab_size", "tokenizer",
                                            "corpus_chars", "seed", "layers", "width", "eval_every",
                                            "sample_every"]))
    _check(1 <= cfg.steps <= 1_000_000, f"--steps must be in 1..1000000, got {cfg.steps}")
    _check(1 <= cfg.batch_size <= 4096, f"--batch-size must be in 1..4096, got {cfg.batch_size}")
    _check(8 <= cfg.context <= 4096, f"--context must be in 8..4096, got {cfg.context}")
    _check(0 < cfg.lr < 1, f"--lr must be in (0, 1), got {cfg.lr}")
    _check(259 <= cfg.vocab_size <= 65536, f"--vocab-size must be in 259..65536, got {cfg.vocab_size}")
    _check(cfg.layers is None or 1 <= cfg.layers <= 64, f"--layers must be in 1..64, got {cfg.layers}")
    _check(cfg.width is None or (16 <= cfg.width <= 4096 and cfg.width % 8 == 0),
           f"--width must be a multiple of 8 in 16..4096, got {cfg.width}")
    _check(cfg.eval_every >= 1 and cfg.sample_every >= 1,
           "--eval-every and --sample-every must be at least 1")
    corpus = None
    if args.text is not None:
        if not args.text.is_file():
            raise UsageError(f"--text: no such file: {args.text}")
        try:
            corpus = user_text(args.text.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise UsageError(f"--text: {args.text} is not UTF-8 text") from None
        except CorpusError as e:
            raise UsageError(f"--text: {e}") from None
    if args.resume is not None:
        _check(read_run(args.resume) is not None, f"--resume: {args.resume} holds no run (no run.json)")
        folder = args.resume
    else:
        folder = args.out or new_run_folder("pretrain")
    try:
        events = pretrain(cfg, folder, corpus, resume=args.resume is not None, extend_to=args.steps)
        run_events(events, args, cfg.steps, "pre-training")
    except ValueError as e:
        raise UsageError(str(e)) from None


def cmd_finetune(args) -> None:
    from prediction_machine.cli.output import UsageError
    from prediction_machine.model.models import checkpoint_folder, shipped_checkpoint
    from prediction_machine.training.curriculum import recipes
    from prediction_machine.training.curriculum.finetune import FinetuneConfig, finetune
    from prediction_machine.training.curriculum.runs import new_run_folder

    set_threads(args)
    start = recipes.get(args.recipe).config if args.recipe else FinetuneConfig()
    cfg = replace(start, **overrides(args, ["steps", "batch_size", "lr", "seed"]))
    _check(1 <= cfg.steps <= 100_000, f"--steps must be in 1..100000, got {cfg.steps}")
    _check(1 <= cfg.batch_size <= 1024, f"--batch-size must be in 1..1024, got {cfg.batch_size}")
    _check(0 < cfg.lr < 1, f"--lr must be in (0, 1), got {cfg.lr}")
    base = checkpoint_folder(args.base) if args.base else shipped_checkpoint(
        recipes.get(args.recipe).base if args.recipe else "shakespeare-base")
    if not (base / "prediction-machine.json").is_file():
        raise UsageError(f"--base: {base} is not a checkpoint written by `prediction-machine pretrain`")
    folder = args.out or new_run_folder("finetune")
    try:
        run_events(finetune(cfg, base, folder), args, cfg.steps, "fine-tuning")
    except ValueError as e:
        raise UsageError(str(e)) from None


def run_events(events, args, steps: int, label: str) -> None:
    """Drive a training iterator: a progress bar for people, JSON lines for scripts."""
    import os

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from prediction_machine.cli.output import console, emit

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, only the first process reports
        for _ in events:
            pass
        return
    quiet = args.json
    with Progress(TextColumn(f"[bold]{label}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} steps"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                  disable=quiet or not sys.stdout.isatty()) as bar:
        task = bar.add_task(label, total=steps, info="")
        for name, data in events:
            if quiet:
                emit({"event": name, **data})
                continue
            if name == "step":
                bar.update(task, completed=data["step"], total=data["steps"],
                           info=f"loss {data['loss']:.3f}  {data['tokens_per_s']:.0f} tok/s")
            elif name == "tokenizer":
                bar.console.print(f"vocabulary: {data['vocab_size']} tokens, "
                                  f"{data['bytes_per_token']:.2f} bytes per token; "
                                  f"{data['train_tokens']:,} training tokens")
            elif name == "start":
                resumed = data.get("resumed_from")
                bar.console.print(f"model: {data['parameters']:,} parameters; run folder {data['folder']}"
                                  + (f"; resumed at step {resumed}" if resumed is not None else ""))
            elif name == "eval":
                parts = [f"{label} {data[key]:.3f}" for key, label in
                         (("train_loss", "train"), ("eval_loss", "held-out")) if key in data]
                bar.console.print(f"step {data['step']}: " + "  ".join(parts))
            elif name == "sample":
                bar.console.print(f"[dim]sample at step {data['step']}:[/dim]")
                bar.console.print(data["prompt"] + ("\n-> " if label == "fine-tuning" else "") + data["text"],
                                  markup=False, highlight=False)
            elif name == "done":
                bar.console.print(f"{data['reason']} at step {data['step']}: {data['tokens']:,} tokens in "
                                  f"{data['seconds']:.0f} s, {data['flops']:.3g} FLOPs; "
                                  f"checkpoint in {data['folder']}")
