"""Checkpoints are one unit: kill -9 a training run at many points while it writes them.

A "zygote" subprocess imports torch once and forks one training process per trial, so 20
trials take seconds, not minutes of interpreter start-ups. Every trial resumes the same run,
checkpointing after every step (so most of the time is spent writing checkpoints), and is
killed with SIGKILL after a random delay. After each kill the run folder must show one
complete checkpoint whose weights, optimizer, tokenizer and run.json agree, and whose token
count and history are exact; every resume must restore the optimizer.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import torch

from prediction_machine.model import weights
from prediction_machine.training.curriculum import checkpoint

TRIALS = 20
B, T = 2, 16  # batch and context of the tiny run: tokens per step = B * T

ZYGOTE = r"""
import json, os, signal, sys
from pathlib import Path
import torch
from prediction_machine.training.curriculum.corpus import user_text
from prediction_machine.training.curriculum.pretrain import TrainConfig, pretrain

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed children are reaped by the kernel
folder = Path(sys.argv[1])
cfg = TrainConfig(model="tiny", layers=1, width=32, tokenizer="char", steps=10**6, batch_size=%d, context=%d,
                  warmup=5, eval_every=10**6, sample_every=10**6, checkpoint_every=1)
text = "To be, or not to be, that is the question. Whether 'tis nobler in the mind to suffer.\n" * 60
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        torch.set_num_threads(1)
        resume = (folder / "run.json").exists()
        corpus = None if resume else user_text(text)
        for name, data in pretrain(cfg, folder, corpus, resume=resume):
            if name == "start":
                with open(folder.parent / "starts.jsonl", "a") as f:
                    seen = {"resumed_from": data["resumed_from"], "restored": data["optimizer_restored"]}
                    f.write(json.dumps(seen) + "\n")
        os._exit(0)
    print(pid, flush=True)
""" % (B, T)


def check_consistent(folder) -> dict:
    """The folder's checkpoint: every file from the same step, and the record's totals exact."""
    where = checkpoint.files(folder)
    assert where != folder, "no current checkpoint"
    record = json.loads((folder / "run.json").read_text())
    meta = json.loads((folder / "prediction-machine.json").read_text())
    opt = torch.load(folder / "optimizer.pt", weights_only=True)
    ckpt = weights.read_own_folder(folder)  # loads: the weights and tokenizer are complete
    step = record["step"]
    assert meta["training"]["step"] == step == opt["step"], (meta["training"], step, opt["step"])
    assert record["tokens"] == step * B * T == meta["training"]["tokens"]
    h = record["history"]
    assert h["step"] == list(range(1, step + 1)), "the history has a gap"
    assert len(h["loss"]) == len(h["lr"]) == step
    assert ckpt.state and ckpt.tokenizer_json
    return record


def test_sigkill_during_checkpoint_writes_leaves_one_consistent_checkpoint(tmp_path):
    folder = tmp_path / "run"
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    rng = random.Random(17)
    steps_seen, leftovers_seen = [], 0
    t_start = time.monotonic()
    try:
        for _ in range(TRIALS):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            # Wait until this trial has written at least one checkpoint of its own, then a random moment more.
            before = steps_seen[-1] if steps_seen else 0
            deadline = time.monotonic() + 60
            while True:
                try:
                    if json.loads((folder / "run.json").read_text())["step"] > before:
                        break
                except (OSError, ValueError, KeyError):
                    pass
                assert time.monotonic() < deadline, "the training process made no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.25))
            os.kill(pid, signal.SIGKILL)
            while True:  # gone (the zygote's children are reaped automatically)
                try:
                    os.kill(pid, 0)
                    time.sleep(0.005)
                except ProcessLookupError:
                    break
            leftovers_seen += sum(1 for p in folder.iterdir() if p.name.endswith(".tmp"))
            record = check_consistent(folder)
            assert record["step"] > before
            steps_seen.append(record["step"])
    finally:
        zygote.kill()
        zygote.wait(10)
    elapsed = time.monotonic() - t_start
    assert elapsed < 240, elapsed

    # Every resume restored the optimizer and went on from exactly the step the last kill left.
    starts = [json.loads(line) for line in (tmp_path / "starts.jsonl").read_text().splitlines()]
    assert len(starts) == TRIALS
    assert starts[0]["resumed_from"] is None
    assert [s["resumed_from"] for s in starts[1:]] == steps_seen[:-1]
    assert all(s["restored"] for s in starts[1:])
    # What a kill left half-written is removed at the next start.
    assert checkpoint.clean_leftovers(tmp_path, min_age_s=3600) == 0  # fresh: maybe a live writer's
    checkpoint.clean_leftovers(tmp_path, min_age_s=0)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp") or
                (p.name.startswith(checkpoint.PREFIX) and p != checkpoint.files(folder))]
    check_consistent(folder)
    print(f"{TRIALS} kills in {elapsed:.1f} s, steps {steps_seen}, "
          f"{leftovers_seen} leftover .tmp seen after kills")


def test_commit_replaces_the_whole_set_at_once(tmp_path):
    """The current link moves in one rename; older checkpoint folders are removed."""
    for step in (1, 2):
        checkpoint.commit(tmp_path, step, lambda d, s=step: [(d / n).write_text(str(s)) for n in
                                                                  ("a.txt", "prediction-machine.json")])
    assert (tmp_path / "a.txt").read_text() == "2" and (tmp_path / "a.txt").is_symlink()
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(checkpoint.PREFIX)]) == 1
    (tmp_path / "x.tmp").write_text("half")
    (tmp_path / ".ckpt-000003-abc.tmp").mkdir()
    assert checkpoint.clean_run(tmp_path) == 2
