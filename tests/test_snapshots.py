"""Snapshots during pre-training: the induction and previous-token scores, and the run's snapshots.json.

The scores are checked on hand-built attention patterns; the snapshots on a micro run (2 layers,
width 64, 20 steps), resumed once, on one thread.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch
from conftest import make_app
from hostile_model import LiveServer

from prediction_machine.training.curriculum import induction, pretrain, runs, snapshots

MICRO = pretrain.TrainConfig(
    layers=2, width=64, vocab_size=300, bpe_chars=40_000, corpus_chars=60_000, steps=20, batch_size=8,
    context=32, lr=1e-2, warmup=3, eval_every=10, eval_batches=2, sample_every=20, sample_tokens=8,
    checkpoint_every=10,
)

pytestmark = pytest.mark.usefixtures("one_thread")
TOKEN = "snapshots-token-7c1d"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """Runs of this module live under a tmp folder (PREDICTION_MACHINE_RUNS), put back afterwards."""
    root = tmp_path_factory.mktemp("runs")
    patch = pytest.MonkeyPatch()
    patch.setenv("PREDICTION_MACHINE_RUNS", str(root))
    yield root
    patch.undo()


def perfect_copy(n: int) -> torch.Tensor:
    """Attention of a perfect induction head on a twice-repeated probe of 2n tokens. -> (2n, 2n)"""
    att = torch.zeros(2 * n, 2 * n)
    att[:n, 0] = 1.0  # the first half has nothing to copy yet: it looks at the first token
    for i in range(n):
        att[n + i, i + 1] = 1.0  # position n+i holds token i again: look at what followed it
    return att


def uniform(T: int) -> torch.Tensor:
    """Causal attention spread evenly over every visible token. -> (T, T)"""
    att = torch.tril(torch.ones(T, T))
    return att / att.sum(-1, keepdim=True)


def test_induction_score_is_one_on_a_perfect_copy_and_about_zero_on_uniform():
    assert induction.induction_scores(perfect_copy(24)).item() == 1.0
    flat = induction.induction_scores(uniform(48)).item()
    assert 0 < flat < 0.05  # 1/(n+i+1) averaged over the second half: ln 2 / n, about 0.03
    assert induction.induction_scores(torch.eye(48)).item() == 0.0  # attending to itself copies nothing


def test_previous_token_score():
    shifted = torch.zeros(10, 10)
    shifted[0, 0] = 1.0
    shifted[torch.arange(1, 10), torch.arange(9)] = 1.0
    assert induction.previous_token_scores(shifted).item() == 1.0
    assert induction.previous_token_scores(perfect_copy(5)).item() == pytest.approx(1 / 9)
    heads = torch.stack([shifted, uniform(10)])  # (H, T, T): one score per head
    assert induction.previous_token_scores(heads).shape == (2,)


def test_repeated_tokens_repeat_and_draw_only_the_given_tokens():
    probe = induction.repeated_tokens(torch.tensor([5, 9, 11]), n=6, probes=3)
    assert probe.shape == (3, 12)
    assert torch.equal(probe[:, :6], probe[:, 6:])
    assert set(probe.flatten().tolist()) <= {5, 9, 11}
    assert torch.equal(probe, induction.repeated_tokens(torch.tensor([5, 9, 11]), n=6, probes=3))


def test_formation_is_the_first_snapshot_over_the_threshold():
    snaps = [{"step": s, "loss": 5 - s / 100, "induction": [[0.0, best], [0.1, 0.0]]}
             for s, best in ((0, 0.02), (50, 0.3), (100, 0.55), (150, 0.9))]
    found = induction.formation(snaps, threshold=0.5)
    assert found == {"step": 100, "loss": 4.0, "score": 0.55, "layer": 0, "head": 1, "threshold": 0.5}
    assert induction.formation(snaps, threshold=0.95) is None


def test_a_run_keeps_its_snapshots_and_a_resumed_run_continues_them(runs_root):
    folder = runs_root / "pretrain-micro"
    evs = list(pretrain.pretrain(replace(MICRO, steps=10), folder))
    shots = [d for n, d in evs if n == "snapshot"]
    assert [s["step"] for s in shots] == list(range(11))  # 10 steps: every step, and step 0
    doc = snapshots.read(folder)
    assert [s["step"] for s in doc["snapshots"]] == list(range(11))
    assert doc["snapshots"][0]["loss"] is None and doc["snapshots"][-1]["loss"] > 0
    L, H = 2, 4
    first = doc["snapshots"][-1]
    T = len(doc["probe"]["tokens"])
    assert 0 < T <= snapshots.MAX_PROBE_TOKENS
    assert [len(first[k]) for k in ("induction", "previous")] == [L, L]
    assert len(first["attention"]) == L and len(first["attention"][0]) == H
    for q, row in enumerate(first["attention"][1][3]):  # causal rows: q + 1 keys, summing to 1
        assert len(row) == q + 1 and sum(row) == pytest.approx(1.0, abs=0.01)
    assert [g["layer"] for g in first["lens"]] == [0, 1] and len(first["lens"][0]["tokens"]) == 3
    assert doc["every"] == 1 and doc["threshold"] == induction.FORMED_AT
    # a run of the default cadence stays small: 41 snapshots of a 4 x 4 model are under a megabyte
    assert len(json.dumps(first)) * (snapshots.SNAPSHOTS_PER_RUN + 1) * 4 < 1_000_000

    evs = list(pretrain.pretrain(MICRO, folder, resume=True, extend_to=20))
    doc = snapshots.read(folder)
    assert [s["step"] for s in doc["snapshots"]] == list(range(11)) + list(range(11, 21))
    assert not [d for n, d in evs if n == "snapshot" and d["step"] == 0]  # step 0 is not taken again
    rows = snapshots.table(doc)
    assert rows[-1]["step"] == 20 and rows[-1]["induction_head"].startswith("L")


def test_every_is_the_stated_cadence():
    assert [snapshots.every(s) for s in (1200, 600, 300, 20)] == [30, 15, 7, 1]
    assert snapshots.read(Path("/nonexistent")) is None


# ----------------------------------------------------------------------------- the ways in: API, CLI, route


def test_python_api_and_cli_read_a_runs_snapshots(runs_root, capsys):
    import prediction_machine as pm

    doc = pm.run_snapshots("pretrain-micro")  # a run id, as the page names it
    assert [s["step"] for s in doc["snapshots"]][-1] == 20
    assert doc["curve"][-1][0] == 20 and len(doc["curve"]) == 20  # the run's loss history, every step
    assert pm.run_snapshots(runs_root / "pretrain-micro")["formed"] == doc["formed"]
    with pytest.raises(ValueError, match="holds no snapshots"):
        pm.run_snapshots("no-such-run")

    from prediction_machine.cli import main  # in process: the command itself, without a second torch import

    assert main(["snapshots", str(runs_root / "pretrain-micro"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshots"][-1]["step"] == 20
    assert main(["snapshots", "pretrain-micro"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "best induction" in out and "no head's induction score reached 0.4" in out
    assert main(["snapshots", "no-such-run"]) == 2
    assert "holds no snapshots" in capsys.readouterr().err


def test_thinning_and_the_loss_curve_are_bounded():
    doc = {"snapshots": [{"step": s} for s in range(200)]}
    kept = [s["step"] for s in snapshots.thinned(doc, 5)["snapshots"]]
    assert kept == [0, 50, 100, 149, 199]  # evenly spaced, the first and the last kept
    curve = snapshots.loss_curve(list(range(1, 1201)), [1.0] * 1200)
    assert len(curve) <= snapshots.CURVE_POINTS and curve[0][0] == 1 and curve[-1][0] == 1200


def test_route_answers_the_owner_and_the_teacher_and_404_for_another_student(runs_root, stub):
    (runs_root / "pretrain-micro" / runs.OWNER_FILE).write_text("c:someone-else")
    path = "/api/curriculum/snapshots/pretrain-micro"
    app = make_app(model=stub, token=TOKEN, allowed_hosts=("*",))
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        teacher = {"authorization": f"Bearer {TOKEN}"}
        r = c.get(path, headers=teacher)
        assert r.status_code == 200 and r.json()["snapshots"][-1]["step"] == 20
        first = c.get("/", params={"token": TOKEN}, follow_redirects=False)
        student = {"cookie": "; ".join(f"{k}={v}" for k, v in first.cookies.items())}
        other = c.get(path, headers=student)
        missing = c.get("/api/curriculum/snapshots/pretrain-none", headers=student)
        assert other.status_code == missing.status_code == 404
        assert other.json()["error"] == missing.json()["error"].replace("pretrain-none", "pretrain-micro")
        shipped = c.get("/api/curriculum/snapshots", headers=student).json()["shipped"]
        assert shipped == snapshots.shipped_names()
        for name in shipped:  # the shipped records are everyone's
            assert c.get(f"/api/curriculum/snapshots/{name}", headers=student).status_code == 200
        assert c.get("/api/curriculum/snapshots/..%2Fetc", headers=teacher).status_code in (404, 422)
