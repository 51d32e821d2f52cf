"""Scale-out: two CPU processes under torchrun (DistributedDataParallel, gloo) take the same steps
as one process with the same global batch. Each process computes the loss of its half of the
batch; DDP averages the gradients, which equals the full batch's mean gradient.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ARGS = ["pretrain", "--corpus-chars", "40000", "--vocab-size", "280", "--layers", "1", "--width", "32",
        "--steps", "5", "--batch-size", "8", "--context", "16", "--eval-every", "5", "--sample-every", "100",
        "--json"]


def losses(cmd: list[str], out) -> list[float]:
    proc = subprocess.run(cmd + ["--out", str(out)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    start = next(e for e in events if e["event"] == "start")
    return start["processes"], [e["loss"] for e in events if e["event"] == "step"]


def test_two_processes_match_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    one_n, one = losses([sys.executable, "-m", "prediction_machine", *ARGS], tmp_path / "one")
    two_n, two = losses([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                         "-m", "prediction_machine", *ARGS], tmp_path / "two")
    assert (one_n, two_n) == (1, 2)
    assert len(one) == len(two) == 5
    assert two == pytest.approx(one, abs=1e-4)
    assert one[-1] < one[0]  # and it is really training
