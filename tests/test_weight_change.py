"""What fine-tuning changed inside: the relative weight change, three stages side by side, the CLI, the API.

Reference values are hand-computed; the shipped models (3.4 MB each) are read from their files.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_app
from fastapi.testclient import TestClient
from safetensors.torch import save_file

from prediction_machine.cli import main
from prediction_machine.training.curriculum import weight_change as wc


def test_a_model_against_itself_changed_nothing():
    change = wc.diff_models("shakespeare-base", "shakespeare-base")
    assert change.overall == 0.0 and change.changed_share == 0.0
    assert all(v == 0.0 for row in change.grid for v in row) and set(change.others.values()) == {0.0}
    assert len(change.grid) == 4 and len(change.grid[0]) == len(wc.MATRICES)


def test_relative_change_against_a_hand_computed_edit():
    before = {f"blocks.0.{wc.PARTS[m]}.weight": torch.ones(2, 2) for m in wc.MATRICES}
    before["embed.weight"] = torch.ones(3, 2)
    after = {k: v.clone() for k, v in before.items()}
    after["blocks.0.attn.q.weight"][0, 0] = 2.0  # ||dW|| = 1, ||W|| = 2: a change of 0.5
    change = wc.compare_states(before, after, 1)
    assert change.grid[0][wc.MATRICES.index("q")] == pytest.approx(0.5)
    assert change.largest == {"layer": 0, "matrix": "q", "change": pytest.approx(0.5)}
    assert sum(v > 0 for v in change.grid[0]) == 1 and change.changed_share == pytest.approx(1.0)
    total = (len(wc.MATRICES) * 4 + 6) ** 0.5  # every matrix's squared norm, summed
    assert change.overall == pytest.approx(1 / total)


def test_a_lora_delta_is_scale_b_a(tmp_path):
    """A LoRA run's change of W is (alpha / r) B A, placed on the top layers' targets in lora.py's order."""
    before = {f"blocks.{i}.{wc.PARTS[m]}.weight": torch.ones(4, 4) for i in range(2) for m in wc.MATRICES}
    A, B = torch.ones(1, 4), torch.zeros(4, 1)
    B[0, 0] = 1.0
    tensors = {"adapter.0.A": A, "adapter.0.B": B, "adapter.1.A": A.clone(), "adapter.1.B": torch.zeros(4, 1)}
    cfg = {"rank": 1, "alpha": 2.0, "layers": 1, "targets": ("q", "v")}
    save_file(tensors, str(tmp_path / wc.LORA_FILE), metadata={"config": str(cfg)})
    after = wc.lora_deltas(tmp_path, before, 2)
    assert set(after) == {"blocks.1.attn.q.weight", "blocks.1.attn.v.weight"}
    change = wc.compare_states(before, after, 2, lora=True)
    assert change.grid[1][wc.MATRICES.index("q")] == pytest.approx(2 * 2 / 4)  # ||2 * row of ones|| / ||W||
    assert change.grid[1][wc.MATRICES.index("v")] == 0.0 and change.grid[0] == [0.0] * len(wc.MATRICES)


def test_models_of_different_shapes_are_refused(stub):
    with pytest.raises(ValueError, match="not trained from"):
        wc.diff_models("shakespeare-base", stub)


def test_the_cli_prints_the_table_and_json(capsys):
    assert main(["diff-models", "shakespeare-chat", "shakespeare-dpo", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["overall"] < 0.1 and len(out["grid"]) == 4  # DPO is the small step: a few per cent
    assert main(["diff-models", "shakespeare-base", "no-such-run"]) == 2
    assert "is not a model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app(), base_url="http://127.0.0.1") as c:
        yield c


def test_the_three_stages_side_by_side(client):
    r = client.post("/api/curriculum/inside", json={"question": "Who is Hamlet's mother?", "layer": 1,
                                                    "head": 2, "answer_tokens": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    base, chat, dpo = body["stages"]
    assert [s["name"] for s in body["stages"]] == ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"]
    assert body["answer_token"]["text"] == "G" and chat["answer"].startswith("Gertrude")
    assert base["answer_token_prob"] < 0.05 < 0.9 < chat["answer_token_prob"]  # SFT taught the answer
    assert len(dpo["lens"]) == 4 and dpo["lens"][-1] == pytest.approx(dpo["answer_token_prob"], abs=1e-6)
    assert len(chat["attention"]) == len(body["prompt_tokens"]) and sum(chat["attention"]) == pytest.approx(1)
    sft, pref = body["changes"]
    assert pref["overall"] < sft["overall"]  # preference tuning moved the weights far less than SFT


def test_bad_stage_requests_say_what_is_wrong(client):
    r = client.post("/api/curriculum/inside", json={"layer": 9})
    assert r.status_code == 422 and r.json()["error"].startswith("layer: is 9; these models' layers are 0..3")
    r = client.post("/api/curriculum/inside", json={"stages": ["shakespeare-base", "no-such-run"]})
    assert r.status_code == 404 and "no-such-run" in r.json()["error"]
    same = {"before": "shakespeare-base", "after": "shakespeare-base"}
    r = client.post("/api/curriculum/diff-models", json=same)
    assert r.status_code == 200 and r.json()["overall"] == 0.0
    r = client.post("/api/curriculum/diff-models", json={"before": "../etc", "after": "shakespeare-dpo"})
    assert r.status_code == 422
