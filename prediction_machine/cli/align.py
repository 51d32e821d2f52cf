"""`prediction-machine align` and `prediction-machine safety`: preference tuning and its safety table.

    prediction-machine align --recipe shakespeare-dpo --out /tmp/dpo    # rebuilds the shipped DPO model
    prediction-machine align --sft RUN --beta 0.2 --json    # your own fine-tuned run
    prediction-machine safety                  # base, SFT and DPO: refusals, over-refusals, helpfulness
    prediction-machine safety --models shakespeare-chat RUN --answers --json

`align` shows a progress bar with the loss, the reward margin and the held-out accuracy, and
prints one JSON line per event with --json. `safety` measures every number live.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from prediction_machine.cli.curriculum import _check, overrides, recipe_option, set_threads, threads


def register(sub) -> None:
    s = sub.add_parser("align", help="preference-tune (DPO) a fine-tuned model on chosen vs rejected answers")
    recipe_option(s, "dpo", "shakespeare-dpo")
    s.add_argument("--sft", default=None,
                   help="the fine-tuned model: a shipped name, run id or folder "
                        "(default: the recipe's, shakespeare-chat)")
    s.add_argument("--steps", type=int, default=None, help="optimizer steps (default 40)")
    s.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 32)")
    s.add_argument("--lr", type=float, default=None, help="peak learning rate (default 3e-4)")
    s.add_argument("--beta", type=float, default=None,
                   help="how tightly the model is held to where it started (default 0.1; larger = closer)")
    s.add_argument("--sft-weight", type=float, default=None,
                   help="weight of the fine-tuning loss on the chosen answers (default 1; 0 = pure DPO)")
    s.add_argument("--eval-every", type=int, default=None, help="held-out accuracy and KL every N steps")
    s.add_argument("--pairs", type=int, default=None,
                   help="train on a random N of the training pairs (seeded), to measure how many are needed")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--out", type=Path, default=None,
                   help="run folder (default: a new folder under the runs directory)")
    s.add_argument("--json", action="store_true", help="print one JSON line per event")
    threads(s)
    s.set_defaults(func=cmd_align)

    s = sub.add_parser("safety",
                       help="the safety table: refusal, over-refusal and helpfulness of base, SFT and DPO")
    s.add_argument("--models", nargs="+", default=None,
                   help="shipped names, run ids or folders (default: base, SFT, DPO)")
    s.add_argument("--answers", action="store_true",
                   help="also list every answer with whether it counts as a refusal")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    threads(s)
    s.set_defaults(func=cmd_safety)


def checkpoint_folder(name: str, option: str) -> Path:
    """A shipped name, a run id or a folder -> a checkpoint folder, or a clear usage error."""
    from prediction_machine.cli.output import UsageError
    from prediction_machine.model.models import shipped_checkpoint
    from prediction_machine.training.curriculum.runs import find_checkpoint

    for path in (shipped_checkpoint(name) if "/" not in name else None, find_checkpoint(name), Path(name)):
        if path is not None and (path / "prediction-machine.json").is_file():
            return path
    raise UsageError(f"{option}: {name!r} is not a checkpoint (a shipped name, a run id, or a folder)")


def cmd_align(args) -> None:
    from prediction_machine.cli.curriculum import run_events
    from prediction_machine.cli.output import UsageError
    from prediction_machine.training.curriculum import preferences, recipes
    from prediction_machine.training.curriculum.dpo import dpo
    from prediction_machine.training.curriculum.runs import new_run_folder

    set_threads(args)
    recipe = recipes.get(args.recipe)
    chosen = overrides(args, ["steps", "batch_size", "lr", "beta", "sft_weight", "eval_every", "seed"])
    cfg = replace(recipe.config, **chosen)
    _check(1 <= cfg.steps <= 10_000, f"--steps must be in 1..10000, got {cfg.steps}")
    _check(1 <= cfg.batch_size <= 256, f"--batch-size must be in 1..256, got {cfg.batch_size}")
    _check(0 < cfg.lr < 1, f"--lr must be in (0, 1), got {cfg.lr}")
    _check(0 < cfg.beta <= 10, f"--beta must be in (0, 10], got {cfg.beta}")
    _check(0 <= cfg.sft_weight <= 100, f"--sft-weight must be in 0..100, got {cfg.sft_weight}")
    _check(cfg.eval_every >= 1, f"--eval-every must be at least 1, got {cfg.eval_every}")
    sft_name = args.sft or recipe.base
    sft = checkpoint_folder(sft_name, "--sft")
    train = preferences.split("train")
    if args.pairs is not None:
        _check(1 <= args.pairs <= len(train), f"--pairs must be in 1..{len(train)}, got {args.pairs}")
        train = random.Random(cfg.seed).sample(train, args.pairs)
    folder = args.out or new_run_folder("dpo")
    name = sft_name if "/" not in sft_name else str(sft)
    try:
        events = with_rewards(dpo(cfg, sft, folder, train, sft_name=name), args.json)
        run_events(events, args, cfg.steps, "preference tuning")
    except ValueError as e:
        raise UsageError(str(e)) from None


def with_rewards(events, quiet: bool):
    """Pass the events on; for people, print the held-out numbers as they are measured."""
    from prediction_machine.cli.output import console

    last = None
    for name, data in events:
        if name == "step":
            last = data
        if not quiet and name == "eval" and last is not None and last["step"] == data["step"]:
            console.print(f"step {data['step']}: loss {last['loss']:.3f}  "
                          f"rewards chosen {last['reward_chosen']:+.3f} "
                          f"rejected {last['reward_rejected']:+.3f}  "
                          f"margin {last['margin']:+.3f}  held-out accuracy {data['accuracy']:.1%}  "
                          f"KL {data['kl']:.3f}")
        elif not quiet and name == "done":
            f, last = data["first"], data["last"]
            console.print(f"held-out preference accuracy {f['accuracy']:.1%} -> {last['accuracy']:.1%}; "
                          f"mean per-token KL from the start {last['kl']:.3f}")
        yield name, data


def cmd_safety(args) -> None:
    from rich.table import Table

    from prediction_machine.cli.output import console, emit
    from prediction_machine.training.curriculum import safety

    set_threads(args)
    names = args.models or list(safety.MODELS)
    table = safety.table({n: checkpoint_folder(n, "--models") for n in names})
    if args.json:
        if not args.answers:
            for row in table["rows"]:
                row.pop("answers")
        emit(table)
        return
    t = Table(title="Safety, measured now")
    for h in ("model", "refuses harmful", "refuses benign look-alikes", "helpfulness (held-out pairs)",
              "factual (held-out)"):
        t.add_column(h)
    for r in table["rows"]:
        c = r["counts"]
        t.add_row(r["model"], f"{r['refusal_rate']:.0%} of {c['harmful']}",
                  f"{r['over_refusal_rate']:.0%} of {c['benign']}",
                  f"{r['helpfulness']:.1%} of {c['pairs']}", f"{r['factual_accuracy']:.1%} of {c['factual']}")
    console.print(t)
    console.print(table["rule"], markup=False, highlight=False)
    if args.answers:
        for r in table["rows"]:
            console.print(f"[bold]{r['model']}[/bold]")
            for a in r["answers"]:
                mark = "refused" if a["refused"] else "answered"
                console.print(f"  {a['kind']:7} {mark:8} {a['prompt']} -> {a['answer']}",
                              markup=False, highlight=False)
