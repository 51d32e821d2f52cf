"""`prediction-machine backprop`: train the playground network in the terminal.

    prediction-machine backprop --dataset moons --steps 500
    prediction-machine backprop --dataset spiral --hidden 16,16 --lr 0.3 --steps 2000 --png spiral.png
    prediction-machine backprop --dataset xor --json

Same Session as the web playground: same data, same initial weights, same numbers.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from prediction_machine.jsonsafe import json_number


def register(sub) -> None:
    from prediction_machine.training.backprop.datasets import GENERATORS
    from prediction_machine.training.backprop.nn import ACTIVATIONS

    s = sub.add_parser("backprop", help="train a small neural network on a 2-D dataset with backpropagation")
    s.add_argument("--dataset", choices=list(GENERATORS), default="moons",
                   help="which points to classify (default moons)")
    s.add_argument("--steps", type=int, default=500, help="updates of gradient descent (default 500)")
    s.add_argument("--hidden", default="8,8",
                   help="widths of the hidden layers, comma-separated (default 8,8; '' = none)")
    s.add_argument("--activation", choices=list(ACTIVATIONS), default="tanh",
                   help="hidden-layer activation (default tanh)")
    s.add_argument("--lr", type=float, default=0.3, help="learning rate (default 0.3)")
    s.add_argument("--batch-size", type=int, default=32, help="points per update (default 32)")
    s.add_argument("--l2", type=float, default=0.0, help="L2 weight decay (default 0)")
    s.add_argument("--points", type=int, default=200, help="points generated (default 200)")
    s.add_argument("--noise", type=float, default=0.1, help="noise added to every point (default 0.1)")
    s.add_argument("--seed", type=int, default=0, help="seed for the data and batch order (default 0)")
    s.add_argument("--init-seed", type=int, default=0, help="seed for the initial weights (default 0)")
    s.add_argument("--png", type=Path, default=None,
                   help="also write a picture of the decision boundary to this file")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run)


def parse_hidden(text: str) -> tuple[int, ...]:
    """'8,8' -> (8, 8); '' -> ()."""
    from prediction_machine.cli.output import UsageError

    try:
        widths = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise UsageError(f"--hidden must be comma-separated widths like 8,8, got {text!r}") from None
    if len(widths) > 6 or any(not 1 <= w <= 64 for w in widths):
        raise UsageError(f"--hidden takes at most 6 layers of width 1..64, got {text!r}")
    return widths


def run(args) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from prediction_machine.cli.output import UsageError, console, emit
    from prediction_machine.training.backprop.playground import PlaygroundConfig, Session
    from prediction_machine.training.backprop.png import boundary_pixels, png_bytes

    checks = [
        (1 <= args.steps <= 1_000_000, f"--steps must be in 1..1000000, got {args.steps}"),
        (2 <= args.points <= 10_000, f"--points must be in 2..10000, got {args.points}"),
        (1 <= args.batch_size, f"--batch-size must be at least 1, got {args.batch_size}"),
        (math.isfinite(args.lr) and args.lr > 0, f"--lr must be a positive number, got {args.lr}"),
        (math.isfinite(args.l2) and args.l2 >= 0, f"--l2 must be zero or positive, got {args.l2}"),
        (math.isfinite(args.noise) and 0 <= args.noise <= 1, f"--noise must be in [0, 1], got {args.noise}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    if args.png is not None and not args.png.parent.is_dir():
        raise UsageError(f"--png: the folder {str(args.png.parent)!r} does not exist")
    config = PlaygroundConfig(
        dataset=args.dataset, n_points=args.points, noise=args.noise, hidden=parse_hidden(args.hidden),
        activation=args.activation, learning_rate=args.lr, batch_size=args.batch_size, l2=args.l2,
        seed=args.seed, init_seed=args.init_seed,
    )
    session = Session(config)
    start = session.history[0]
    show = not args.json and sys.stdout.isatty()
    columns = (TextColumn("[bold]training"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not show) as bar:
        task = bar.add_task("train", total=args.steps, loss=f"{start.train_loss:.4f}")
        while session.step_count < args.steps and not session.paused_reason:
            rows = session.step(min(50, args.steps - session.step_count))
            if rows:
                bar.update(task, completed=session.step_count, loss=f"{rows[-1].train_loss:.4f}")
    end = session.history[-1]
    if args.png is not None:
        points = [(p.x, p.y, p.label) for p in session.points]
        args.png.write_bytes(png_bytes(boundary_pixels(session.grid(60).tolist(), points, scale=8)))

    result = {
        "dataset": args.dataset, "sizes": config.sizes, "activation": args.activation,
        "steps": session.step_count,
        "paused_reason": session.paused_reason,
        "start": {"train_loss": json_number(start.train_loss, 6),
                  "test_loss": json_number(start.test_loss, 6)},
        "train_loss": json_number(end.train_loss, 6), "test_loss": json_number(end.test_loss, 6),
        "train_accuracy": json_number(end.train_accuracy, 6),
        "test_accuracy": json_number(end.test_accuracy, 6),
        "png": str(args.png) if args.png is not None else None,
    }
    if args.json:
        emit(result)
        return
    sizes = "-".join(map(str, config.sizes))
    table = Table(title=f"{args.dataset}: network {sizes} ({args.activation}), {session.step_count} steps")
    for col in ("", "train", "test"):
        table.add_column(col, justify="right")
    table.add_row("loss at step 0", f"{start.train_loss:.4f}", _fmt(start.test_loss))
    table.add_row("loss now", f"{end.train_loss:.4f}", _fmt(end.test_loss))
    table.add_row("accuracy", f"{end.train_accuracy:.1%}", _fmt(end.test_accuracy, pct=True))
    console.print(table)
    if session.paused_reason:
        console.print(f"[bold]{session.paused_reason}[/bold]")
    if args.png is not None:
        console.print(f"decision boundary written to {args.png}")


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:.1%}" if pct else f"{x:.4f}"
