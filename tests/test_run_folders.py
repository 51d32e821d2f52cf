"""Run folders that never got a checkpoint (a job that failed, or a server killed mid-run) are pruned."""

from __future__ import annotations

import os
import time

from prediction_machine.training.curriculum import runs


def test_a_run_folder_without_a_checkpoint_is_pruned_once_it_is_a_minute_old(tmp_path, monkeypatch):
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(tmp_path))
    old = time.time() - 2 * runs.EMPTY_GRACE_S
    failed = runs.new_run_folder("pretrain", owner="alice")
    (failed / "corpus.txt").write_text("the learner's text, and no checkpoint after it")
    killed = runs.new_run_folder("finetune", owner="alice")
    busy = runs.new_run_folder("dpo", owner="alice")
    others = runs.new_run_folder("lora", owner="bob")
    for folder in (failed, killed, busy, others):
        os.utime(folder, (old, old))
    fresh = runs.new_run_folder("pretrain", owner="alice")  # just claimed: its job may not be listed yet
    removed = runs.prune("alice", max_bytes=1e9, max_age_s=1e9, keep={busy.name})
    assert sorted(removed) == sorted([failed.name, killed.name])
    assert not failed.exists() and not killed.exists()
    assert busy.exists() and others.exists() and fresh.exists()
