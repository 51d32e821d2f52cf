"""`prediction-machine snapshots RUN`: the circuits a pre-training run grew, snapshot by snapshot.

    prediction-machine snapshots pretrain-20250101-120000      # a run id, under runs_dir()
    prediction-machine snapshots ~/my-runs/base                 # a run folder
    prediction-machine snapshots tiny-circuits --json           # a shipped record, as JSON

One row per snapshot: the step, the training loss there, and the best head's induction and
previous-token scores (training/curriculum/induction.py explains both). The line under the table
names the step where the best induction score first passed the threshold, or says it never did.
"""

from __future__ import annotations


def register(sub) -> None:
    s = sub.add_parser("snapshots", help="a pre-training run's snapshots: induction and previous-token heads")
    s.add_argument("run", help="a run id, a run folder, or a shipped record's name")
    s.add_argument("--json", action="store_true", help="print the whole record as one JSON object")
    s.set_defaults(func=cmd_snapshots)


def cmd_snapshots(args) -> None:
    from rich.table import Table

    from prediction_machine.cli.output import UsageError, console, emit
    from prediction_machine.training.curriculum import snapshots

    try:
        doc = snapshots.run_snapshots(args.run)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        emit(doc)
        return
    table = Table("step", "loss", "best induction", "head", "best previous-token", "head")
    for row in snapshots.table(doc):
        loss = "-" if row["loss"] is None else f"{row['loss']:.3f}"
        table.add_row(str(row["step"]), loss, f"{row['induction']:.3f}", row["induction_head"],
                      f"{row['previous']:.3f}", row["previous_head"])
    console.print(table)
    formed = doc["formed"]
    if formed:
        head = f"L{formed['layer']}H{formed['head']}"
        console.print(f"induction head formed at step {formed['step']} (loss {formed['loss']:.3f}): "
                      f"{head} scored {formed['score']:.3f} >= {doc['threshold']}")
    else:
        console.print(f"no head's induction score reached {doc['threshold']} in this run")
