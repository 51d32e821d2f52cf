"""DPO: the loss against a hand-computed example, the answer-only mask, the frozen reference,
the data, and the shipped shakespeare-dpo against the fine-tuned model it started from."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import dpo, finetune, preferences, rating

CHAT = shipped_checkpoint("shakespeare-chat")
DPO = shipped_checkpoint("shakespeare-dpo")


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread for this module (conftest.py)


def test_loss_matches_the_hand_computed_example():
    # β = 0.1; policy log π(chosen) = -2, log π(rejected) = -6; reference -3 and -5.
    # rewards: 0.1 * (-2 - -3) = 0.1 and 0.1 * (-6 - -5) = -0.1; margin 0.2;
    # loss = -log σ(0.2) = log(1 + e^-0.2) = log(1.818730753...) = 0.598138869...
    loss, rc, rr = dpo.dpo_loss(torch.tensor([-2.0]), torch.tensor([-6.0]), torch.tensor([-3.0]),
                                torch.tensor([-5.0]), 0.1)
    assert abs(loss.item() - 0.598138869) < 1e-6
    assert abs(rc.item() - 0.1) < 1e-6 and abs(rr.item() + 0.1) < 1e-6


def test_loss_equals_an_independent_computation_on_a_batch():
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-torch.rand(5, generator=g, dtype=torch.float64) * 50 for _ in range(4))
    loss, _, _ = dpo.dpo_loss(pc, pr, rc, rr, 0.3)
    by_hand = sum(math.log(1 + math.exp(-0.3 * ((a - c) - (b - d)))) for a, b, c, d in
                  zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist(), strict=True)) / 5
    assert abs(loss.item() - by_hand) < 1e-9
    # No preference yet (policy == reference): the loss is log 2 whatever β is.
    same = torch.tensor([-4.0, -9.0])
    assert abs(dpo.dpo_loss(same, same, same, same, 5.0)[0].item() - math.log(2)) < 1e-6


def test_answer_logps_count_the_answer_tokens_only():
    model, tok, _ = finetune.load_trainable(CHAT)
    model.eval()
    pair = preferences.Pair(0, "helpful", "train", "Who is Hamlet's mother?",
                            "Gertrude, the Queen of Denmark.", "Miranda.")
    x, y, m = dpo.pair_batch(tok, [pair], 128)  # (2, T) each
    n_answer = len(tok.encode_ids(pair.chosen)) + 1  # and the end marker
    assert m[0].sum().item() == n_answer and m[1].sum().item() == len(tok.encode_ids("Miranda.")) + 1
    prompt = len(finetune.plain_chat_ids(tok, pair.prompt))
    assert m[0, : prompt - 1].sum().item() == 0  # no prompt position is counted
    with torch.no_grad():
        logp = dpo.answer_logps(model, x, y, m)
        logits, _ = model(x)
    by_hand = sum(logits[0, t].log_softmax(-1)[y[0, t]].item() for t in range(x.shape[1]) if m[0, t] == 1)
    assert abs(logp[0].item() - by_hand) < 1e-4
    # Changing the prompt's targets changes nothing: they are masked out.
    y2 = y.clone()
    y2[:, : prompt - 2] = 7
    with torch.no_grad():
        assert torch.allclose(dpo.answer_logps(model, x, y2, m), logp)


def test_a_short_run_moves_the_policy_and_leaves_the_reference_frozen(tmp_path, monkeypatch):
    made = []
    real = finetune.load_trainable

    def spy(folder):
        out = real(folder)
        made.append(out[0])
        return out

    monkeypatch.setattr(finetune, "load_trainable", spy)
    train, held = preferences.split("train")[:8], preferences.split("eval")[:6]
    cfg = dpo.DPOConfig(steps=3, batch_size=8, lr=1e-3, warmup=1, eval_every=1)
    events = list(dpo.dpo(cfg, CHAT, tmp_path / "run", train, held, sft_name="shakespeare-chat"))
    policy, ref = made
    fresh = real(CHAT)[0].state_dict()
    assert all(torch.equal(ref.state_dict()[k], fresh[k]) for k in fresh), "the reference changed"
    assert not all(torch.equal(policy.state_dict()[k], fresh[k]) for k in fresh), "the policy did not move"
    assert all(not p.requires_grad for p in ref.parameters())
    steps = [d for n, d in events if n == "step"]
    evals = [d for n, d in events if n == "eval"]
    assert [s["step"] for s in steps] == [1, 2, 3] and [e["step"] for e in evals] == [0, 1, 2, 3]
    assert abs(steps[0]["loss"] - math.log(2)) < 1e-5  # step 1: the policy is still the reference
    for s in steps:
        assert {"loss", "reward_chosen", "reward_rejected", "margin"} <= set(s)
        assert abs(s["margin"] - (s["reward_chosen"] - s["reward_rejected"])) < 1e-5
    for e in evals:
        assert {"accuracy", "kl"} <= set(e) and e["kl"] >= 0
    assert evals[0]["kl"] == 0 and evals[-1]["kl"] > 0
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["history"]["eval"] == evals and record["tokens"] == steps[-1]["tokens"]
    meta = json.loads((tmp_path / "run" / "prediction-machine.json").read_text())
    assert meta["training"]["kind"] == "dpo" and meta["chat_template"] == finetune.CHAT_TEMPLATE
    assert not list((tmp_path).glob("**/*.tmp")), "a temporary checkpoint folder was left behind"


def test_preference_data_is_well_formed_and_split():
    pairs = preferences.load_pairs()
    assert len(pairs) >= 300
    kinds = Counter((p.kind, p.split) for p in pairs)
    for kind in preferences.KINDS:
        assert kinds[(kind, "train")] > 0 and kinds[(kind, "eval")] > 0, kind
    assert all(p.prompt.strip() and p.chosen.strip() and p.rejected.strip() for p in pairs)
    assert all(p.chosen != p.rejected for p in pairs)
    assert len({p.id for p in pairs}) == len(pairs)
    train = {(p.prompt.lower(), p.chosen.lower()) for p in pairs if p.split == "train"}
    assert not train & {(p.prompt.lower(), p.chosen.lower()) for p in pairs if p.split == "eval"}
    assert all(len(p.prompt) + max(len(p.chosen), len(p.rejected)) < 250 for p in pairs)


def test_learner_pairs_refuse_bad_sets_with_clear_messages():
    ok = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}
    assert preferences.learner_pairs([ok])[0].chosen == "Hello!"
    with pytest.raises(preferences.PairError, match=r"pairs\[0\]\.chosen: is empty"):
        preferences.learner_pairs([{**ok, "chosen": "  "}])
    with pytest.raises(preferences.PairError, match=r"the limit is 64"):
        preferences.learner_pairs([ok] * 65)
    with pytest.raises(preferences.PairError, match="at least 1"):
        preferences.learner_pairs([])
    with pytest.raises(preferences.PairError, match="the same"):
        preferences.learner_pairs([{**ok, "rejected": "Hello!"}])


def test_shipped_dpo_beats_the_fine_tuned_model_on_held_out_pairs():
    held = preferences.split("eval")
    sft, tok, _ = finetune.load_trainable(CHAT)
    tuned, _, meta = finetune.load_trainable(DPO)
    before = dpo.preference_accuracy(sft.eval(), tok, held)
    after = dpo.preference_accuracy(tuned.eval(), tok, held)
    assert after > before, (before, after)
    record = json.loads((DPO / "run.json").read_text())
    assert meta["training"]["kind"] == "dpo" and record["base"] == "shakespeare-chat"
    assert abs(record["history"]["eval"][-1]["accuracy"] - after) < 1e-6  # the recorded number is this one


def test_sampled_pairs_differ_and_repeat_with_the_seed():
    model, tok, _ = finetune.load_trainable(CHAT)
    model.eval()
    a = rating.sample_pair(model, tok, "Who is Hamlet's mother?", seed=3)
    b = rating.sample_pair(model, tok, "Who is Hamlet's mother?", seed=3)
    assert a == b and len(a["answers"]) == 2
    assert a["cut"] == [False, False]  # both ended with the end marker, well inside ANSWER_TOKENS


def test_an_answer_cut_at_its_token_budget_says_so_and_keeps_its_text():
    """Rated answers are the DPO pairs' text: a cut one is flagged, never changed (the page adds "…")."""
    model, tok, _ = finetune.load_trainable(CHAT)
    model.eval()
    whole, cut = rating.sample_answer(model, tok, "Who is Hamlet's mother?", seed=3)
    assert not cut and len(tok.encode(whole)) > 3
    short, cut = rating.sample_answer(model, tok, "Who is Hamlet's mother?", seed=3, max_new_tokens=3)
    assert cut and whole.startswith(short) and not short.endswith("…")


def test_cli_align_prints_json_events_and_rejects_bad_input(tmp_path, capsys):
    from prediction_machine import cli

    out = tmp_path / "run"
    argv = ["align", "--steps", "1", "--pairs", "4", "--batch-size", "4", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "done" and "step" in names
    step = next(e for e in events if e["event"] == "step")
    assert {"loss", "reward_chosen", "reward_rejected", "margin"} <= set(step)
    assert {"accuracy", "kl"} <= set(next(e for e in events if e["event"] == "eval" and e["step"] == 1))
    assert (out / "prediction-machine.json").is_file()
    assert cli.main(["align", "--beta", "0"]) == 2 and "--beta" in capsys.readouterr().err
    assert cli.main(["align", "--sft", str(tmp_path / "nothing")]) == 2
