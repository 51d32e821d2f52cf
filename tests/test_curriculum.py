"""The curriculum: corpus, our own BPE, pre-training, checkpoints and resume, fine-tuning, jobs, CLI, API.

Every training run here is tiny (a 2-layer, width-64 decoder, a few dozen steps on a slice of
Shakespeare), so the file stays fast on 2 CPU cores. Runs are written under a tmp folder.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.training.curriculum import bpe, corpus, finetune, loop, pretrain, recipes
from prediction_machine.training.curriculum import runs as run_folders  # `runs` is the tmp-folder fixture

MICRO = pretrain.TrainConfig(
    layers=2, width=64, vocab_size=300, bpe_chars=40_000, corpus_chars=60_000, steps=30, batch_size=8,
    context=32, lr=1e-2, warmup=3, eval_every=10, eval_batches=2, sample_every=15, sample_tokens=12,
    checkpoint_every=10,
)
BASE = shipped_checkpoint("shakespeare-base")


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread for this module (conftest.py)


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch) -> Path:
    """Every run of this file goes to a tmp folder, never the user's data dir."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("PREDICTION_MACHINE_RUNS", str(folder))
    return folder


def events(it) -> list[tuple[str, dict]]:
    return list(it)


def of(evs, name) -> list[dict]:
    return [d for n, d in evs if n == name]


# ----------------------------------------------------------------------------- corpus


def test_clean_play_by_hand():
    md = ("# Play\n\n## ACT I\n\n_Enter THESEUS and HIPPOLYTA,\nwith others_\n\n"
          "**THESEUS**  \nNow, fair Hippolyta,  \n"
          "_Exit PHILOSTRATE_\n\nour nuptial hour _\\[Aside]_  \n\n**FIRST CITIZEN**  \nSpeak, speak.\n")
    expected = "Theseus:\nNow, fair Hippolyta,\nour nuptial hour\n\nFirst Citizen:\nSpeak, speak.\n"
    assert corpus.clean_play(md) == expected


def test_shakespeare_corpus_is_clean_and_split():
    c = corpus.shakespeare()
    assert len(corpus.shakespeare_plays()) == 38
    assert 4_000_000 < c.chars < 5_500_000
    assert c.train.startswith("Theseus:\nNow, fair Hippolyta")
    for bad in ("**", "_", "#", "\\["):
        assert bad not in c.train[:200_000], bad
    assert abs(len(c.val) / c.chars - corpus.VAL_FRACTION) < 0.01
    assert c.train + c.val == "\n".join(body for _, body in corpus.shakespeare_plays())


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   \n\t ", "empty"), ("x" * (corpus.MAX_USER_CHARS + 1), "the limit is 2,000,000"),
    ("hello\x00" + "a" * 600, r"not plain text: it holds the character U\+0000"),
    ("short text", "at least 500"),
])
def test_user_text_refused_clearly(text, message):
    with pytest.raises(corpus.CorpusError, match=message):
        corpus.user_text(text)


def test_user_text_accepted_and_normalised():
    c = corpus.user_text("Line one.\r\n" * 100)
    assert "\r" not in c.train + c.val and c.train and c.val


# ----------------------------------------------------------------------------- BPE


def test_get_stats_and_merge_docstring_examples():
    assert bpe.get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert bpe.merge([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]


def test_first_merge_is_the_most_frequent_pair_counted_by_hand():
    text = corpus.shakespeare(50_000).train
    counts = Counter()
    for word in bpe.words(text):
        counts.update(zip(word, word[1:], strict=False))
    (a, b), n = counts.most_common(1)[0]
    first = next(bpe.train(text, 1))
    assert first.pair == (a, b) and first.count == n and first.new_id == 256
    assert first.left + first.right == bytes([a, b])


def test_bpe_round_trip_and_exported_tokenizer_agree():
    text = corpus.shakespeare(120_000).train
    model = bpe.train_bpe(text, 400)
    assert model.vocab_size == 400 and len(model.merges) == 400 - 256 - 3
    assert [m.rank for m in model.merges] == list(range(len(model.merges)))
    tok = Tokenizer(model.tokenizer_json())
    assert tok.vocab_size == 400
    for sample in (text[-3000:], "To be, or not to be: 1599 — naïve café 🎭\n\tend", ""):
        ours = model.encode(sample)
        assert tok.encode_ids(sample) == ours  # the exported tokenizer applies our merges the same way
        assert model.decode(ours) == sample and tok.decode(ours) == sample
    # Control tokens are whole tokens from code, plain text from users.
    assert tok.special_id("<|end|>") == 399
    assert 399 not in tok.encode_ids("<|end|>")
    # Merging compresses: English needs fewer tokens than bytes; bytes alone are 1 byte per token.
    sample = text[-5000:]
    assert bpe.compression_ratio(sample, len(model.encode(sample))) > 1.6
    assert bpe.BPE([]).encode("abc") == [97, 98, 99]


# ----------------------------------------------------------------------------- pre-training


def test_lr_schedule_worked_example():
    cfg = pretrain.TrainConfig(lr=1.0, warmup=10, steps=110, min_lr_ratio=0.1)
    assert loop.lr_at(0, cfg) == pytest.approx(0.1)
    assert loop.lr_at(9, cfg) == pytest.approx(1.0)
    assert loop.lr_at(60, cfg) == pytest.approx(0.55)
    assert loop.lr_at(110, cfg) == pytest.approx(0.1)


def test_fit_warmup_and_the_live_recipe_the_page_starts():
    """fit_warmup's docstring example, and the page's run is PRESETS["live"] with the learner's choices."""
    live = pretrain.PRESETS["live"]
    assert [loop.fit_warmup(replace(live, steps=n)).warmup for n in (300, 100, 5)] == [30, 10, 1]
    assert pretrain.live_config() == live  # the page's defaults are the recipe itself
    cfg = pretrain.live_config(steps=100, eval_every=60)
    assert (cfg.warmup, cfg.checkpoint_every, cfg.bpe_chars, cfg.eval_batches) == (10, 60, 200_000, 4)


def test_pretraining_reduces_loss_and_reports_everything(runs):
    evs = events(pretrain.pretrain(MICRO, runs / "a"))
    names = [n for n, _ in evs]
    assert names[0] == "merge" and "tokenizer" in names and names[-1] == "done"
    steps = of(evs, "step")
    assert len(steps) == MICRO.steps
    start = of(evs, "start")[0]
    params = start["parameters"]
    last = steps[-1]
    assert last["tokens"] == MICRO.steps * MICRO.batch_size * MICRO.context
    assert last["flops"] == pytest.approx(6 * params * last["tokens"])
    assert last["tokens_per_s"] > 0 and last["seconds"] > 0
    assert [s["lr"] for s in steps] == pytest.approx([loop.lr_at(i, MICRO) for i in range(MICRO.steps)])
    first_loss = steps[0]["loss"]
    assert first_loss == pytest.approx(math.log(300), abs=0.3)  # a fresh model guesses uniformly
    final = of(evs, "eval")[-1]
    assert final["train_loss"] < first_loss - 1.0 and final["eval_loss"] < first_loss - 1.0
    assert len(of(evs, "sample")) == 2 and all(s["prompt"] == "Romeo:\n" for s in of(evs, "sample"))
    record = json.loads((runs / "a" / "run.json").read_text())
    assert record["status"] == "finished" and record["step"] == MICRO.steps


def test_checkpoint_survives_a_restart_and_resumes_identically(runs):
    """Stop at step 10, resume in a fresh process from the folder: same losses as one unbroken run."""
    whole = of(events(pretrain.pretrain(MICRO, runs / "whole")), "step")
    n = {"steps": 0}

    def stop_after_ten():
        return n["steps"] >= 10

    part = []
    for name, data in pretrain.pretrain(MICRO, runs / "part", should_stop=stop_after_ten):
        if name == "step":
            n["steps"] += 1
            part.append(data)
    done = json.loads((runs / "part" / "run.json").read_text())
    assert done["status"] == "stopped" and done["step"] == 10
    proc = subprocess.run(
        [sys.executable, "-m", "prediction_machine", "pretrain", "--resume", str(runs / "part"), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    later = [json.loads(line) for line in proc.stdout.splitlines()]
    start = next(e for e in later if e["event"] == "start")
    assert start["resumed_from"] == 10 and start["optimizer_restored"]
    resumed = [e for e in later if e["event"] == "step"]
    assert [e["step"] for e in resumed] == list(range(11, MICRO.steps + 1))
    losses = [d["loss"] for d in part] + [e["loss"] for e in resumed]
    assert losses == pytest.approx([d["loss"] for d in whole], abs=2e-4)


def test_stop_ends_within_one_step_and_keeps_the_checkpoint(runs):
    calls = {"n": 0}

    def stop():
        return calls["n"] >= 3

    evs = []
    for name, data in pretrain.pretrain(replace(MICRO, steps=500), runs / "c", should_stop=stop):
        evs.append((name, data))
        if name == "step":
            calls["n"] += 1
    assert of(evs, "done")[0]["reason"] == "stopped" and of(evs, "done")[0]["step"] == 3
    assert (runs / "c" / "model.safetensors").is_file()


def test_shipped_recipe_still_trains(runs):
    """The `shakespeare-base` recipe, shortened: 25 steps on a slice of the plays. Stated bound: loss < 5.3
    (a fresh model of its 512-token vocabulary starts at ln 512 = 6.24)."""
    cfg = replace(recipes.get("shakespeare-base").config, steps=25, batch_size=8, corpus_chars=200_000,
                  bpe_chars=100_000, eval_every=25, eval_batches=2, sample_every=1000, checkpoint_every=1000)
    evs = events(pretrain.pretrain(cfg, runs / "recipe"))
    assert of(evs, "step")[0]["loss"] > 6.0
    assert of(evs, "eval")[-1]["train_loss"] < 5.3


# ----------------------------------------------------------------------------- the shipped base and the data


def test_shipped_base_is_small_and_generates_raw(capsys):
    from prediction_machine import cli
    from prediction_machine.model import models

    assert {"shakespeare-base", "shakespeare-chat"} <= set(models.registry())

    size = sum(f.stat().st_size for f in BASE.iterdir())
    assert size < 6_000_000
    meta = json.loads((BASE / "prediction-machine.json").read_text())
    assert meta["training"]["kind"] == "pretrain" and meta["recipe"]["vocab_size"] == 512
    argv = ["generate", "--model", str(BASE), "--raw", "Romeo:\n", "--max-new-tokens", "8", "--seed", "1",
            "--json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["steps"]) == 8 and out["text"]


def test_finetune_dataset_is_well_formed():
    rows = [json.loads(line) for line in finetune.dataset_path().read_text().splitlines()]
    assert len(rows) >= 300
    assert all(set(r) == {"id", "kind", "split", "user", "assistant"} for r in rows)
    assert all(r["user"].strip() and r["assistant"].strip() for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    users = [r["user"].strip().lower() for r in rows]
    assert len(set(users)) == len(users), "duplicate questions"
    train = {r["user"].strip().lower() for r in rows if r["split"] == "train"}
    held = {r["user"].strip().lower() for r in rows if r["split"] == "eval"}
    assert held and not train & held, "an eval question is also in the training split"
    kinds = Counter((r["kind"], r["split"]) for r in rows)
    for kind in ("plays", "manners", "refusal"):
        assert kinds[(kind, "train")] > 0 and kinds[(kind, "eval")] > 0
    assert {r["split"] for r in rows} == {"train", "eval"}
    assert all(len(r["user"]) + len(r["assistant"]) < 200 for r in rows)  # fits the tiny model's context


def test_loss_mask_covers_exactly_the_answer_and_end_marker():
    model = bpe.train_bpe(corpus.shakespeare(60_000).train, 300)
    tok = Tokenizer(model.tokenizer_json())
    ex = finetune.Example(0, "plays", "train", "Who is Hamlet's mother?", "Gertrude.")
    ids, mask = finetune.encode(tok, ex)
    answer = tok.encode_ids("Gertrude.") + [tok.special_id("<|end|>")]
    assert ids[-len(answer):] == answer and mask == [0] * (len(ids) - len(answer)) + [1] * len(answer)
    shown = finetune.loss_mask(tok, ex)
    assert "".join(t["text"] for t in shown if t["trained"]) == "Gertrude.<|end|>"
    # Target mask is shifted with the targets: position t predicts ids[t+1].
    x, y, m = finetune.batch(tok, [ex], 128)
    assert m[0].tolist() == [float(v) for v in mask[1:]]
    assert y[0].tolist() == ids[1:]


def test_answer_loss_equals_cross_entropy_on_answer_positions_only():
    torch.manual_seed(0)
    from prediction_machine.config import ModelConfig
    from prediction_machine.model.transformer import Transformer

    model = Transformer(ModelConfig(vocab_size=50, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=64,
                                    max_seq_len=16))
    x = torch.randint(0, 50, (2, 6))
    y = torch.randint(0, 50, (2, 6))
    m = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0]], dtype=torch.float)
    logits, _ = model(x)
    keep = m.bool()
    expected = torch.nn.functional.cross_entropy(logits[keep], y[keep])
    assert loop.answer_loss(model, x, y, m).item() == pytest.approx(expected.item(), rel=1e-6)


def test_pad_rows_docstring_example_and_the_lora_loss_is_the_same_loss():
    x, y, m = loop.pad_rows([([5, 6, 7], [0, 1, 1])])
    assert (x.tolist(), y.tolist(), m.tolist()) == ([[5, 6]], [[6, 7]], [[1.0, 1.0]])
    x, y, m = loop.pad_rows([([5, 6, 7], [0, 1, 1]), ([1, 2, 3, 4, 5], [0, 0, 0, 1, 1])], context=4)
    assert x.tolist() == [[5, 6, 0], [1, 2, 3]] and m.tolist() == [[1, 1, 0], [0, 0, 1]]  # cut to 4, padded
    from prediction_machine.config import ModelConfig
    from prediction_machine.model.transformer import Transformer
    from prediction_machine.training.curriculum import lora

    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=20, d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, d_ff=32,
                                    max_seq_len=16))
    rows = [([1, 2, 3, 4], [0, 0, 1, 1]), ([5, 6, 7], [0, 1, 1])]
    assert lora.batch_loss(model, rows).item() == loop.answer_loss(model, *loop.pad_rows(rows)).item()


def test_wait_while_paused_checkpoints_waits_and_yields_to_a_stop():
    assert list(loop.wait_while_paused(3, lambda: False, None)) == []  # not paused: nothing happens
    assert list(loop.wait_while_paused(3, lambda: True, lambda: True)) == []  # a stop wins over a pause
    asked = iter([True, True, False])  # paused at the check, still paused once, then resumed
    on_pause = lambda: ("checkpoint", {"step": 3})  # noqa: E731
    evs = list(loop.wait_while_paused(3, lambda: next(asked), None, on_pause=on_pause))
    assert [n for n, _ in evs] == ["checkpoint", "paused", "resumed"] and evs[1][1] == {"step": 3}


def test_one_run_folder_scheme_listed_and_summarised(runs, monkeypatch):
    """CLI and page name run folders the same way; list_runs and summary read them back."""
    monkeypatch.setattr(run_folders.time, "strftime", lambda fmt: "20250101-120000")
    first, second = run_folders.new_run_folder("pretrain"), run_folders.new_run_folder("pretrain")
    assert (first.name, second.name) == ("pretrain-20250101-120000", "pretrain-20250101-120000-2")
    assert first.parent == second.parent == runs and first.is_dir() and second.is_dir()
    assert all(re.match(run_folders.RUN_ID, f.name) for f in (first, second))
    listed = run_folders.list_runs()
    assert [r["id"] for r in listed if r["shipped"]] == ["shakespeare-base", "shakespeare-chat"]
    assert not [r for r in listed if not r["shipped"]]  # empty folders hold no checkpoint yet
    base = next(r for r in listed if r["id"] == "shakespeare-base")
    assert base["kind"] == "pretrain" and base["last_eval"]["eval_loss"] > 0 and base["tokens"] > 0
    assert run_folders.find_checkpoint("shakespeare-base") == BASE
    assert run_folders.find_checkpoint("../etc") is None and run_folders.find_checkpoint(first.name) is None


def test_finetuning_lowers_the_held_out_answer_loss(runs):
    cfg = finetune.FinetuneConfig(steps=8, batch_size=8, lr=2e-3, warmup=2, eval_every=8, sample_every=8,
                                  checkpoint_every=1000)
    evs = events(finetune.finetune(cfg, BASE, runs / "ft"))
    done = of(evs, "done")[0]
    assert done["eval_loss"] < done["base_eval_loss"] - 0.5
    meta = json.loads((runs / "ft" / "prediction-machine.json").read_text())
    assert meta["chat_template"] == finetune.CHAT_TEMPLATE and meta["eos_id"] == 511
    mask = of(evs, "start")[0]["mask_example"]
    assert mask[0]["text"] == "<|user|>" and not mask[0]["trained"]
    assert mask[-1]["text"] == "<|end|>" and mask[-1]["trained"]
    # The comparison: both answers, and top-k tables that are real probabilities.
    base, tok, _ = finetune.load_trainable(BASE)
    tuned, _, _ = finetune.load_trainable(runs / "ft")
    out = finetune.compare(base.eval(), tuned.eval(), tok, "Who is Hamlet's mother?", k=5)
    for side in ("base", "tuned"):
        probs = [r["prob"] for r in out[side]["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert 0 < out["moved"] <= 1
    first = out["base"]["top"][0]
    in_tuned = (r["prob"] for r in out["tuned"]["top"] if r["token"]["id"] == first["token"]["id"])
    assert first["other_prob"] == pytest.approx(next(in_tuned, first["other_prob"]))


# ----------------------------------------------------------------------------- CLI


def test_cli_refuses_empty_and_too_big_text(tmp_path, capsys):
    from prediction_machine import cli

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert cli.main(["pretrain", "--text", str(empty)]) == 2
    assert "--text: the text is empty" in capsys.readouterr().err
    big = tmp_path / "big.txt"
    big.write_text("a" * (corpus.MAX_USER_CHARS + 1))
    assert cli.main(["pretrain", "--text", str(big)]) == 2
    assert "the limit is 2,000,000" in capsys.readouterr().err
    assert cli.main(["pretrain", "--text", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["pretrain", "--steps", "0"]) == 2
    assert "--steps must be" in capsys.readouterr().err


def test_cli_pretrain_writes_a_checkpoint_that_generate_loads(tmp_path, capsys):
    from prediction_machine import cli

    text = tmp_path / "mine.txt"
    text.write_text(corpus.shakespeare(30_000).train)
    out = tmp_path / "run"
    argv = ["pretrain", "--text", str(text), "--steps", "4", "--batch-size", "4", "--context", "16",
            "--vocab-size", "280", "--layers", "1", "--width", "32", "--eval-every", "4",
            "--sample-every", "4", "--out", str(out), "--json"]
    assert cli.main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1]["event"] == "done" and lines[-1]["step"] == 4
    assert (out / "corpus.txt").read_text() == text.read_text()  # the learner's text is kept with the run
    argv = ["generate", "--model", str(out), "--raw", "The", "--max-new-tokens", "3", "--seed", "0", "--json"]
    assert cli.main(argv) == 0
    assert len(json.loads(capsys.readouterr().out)["steps"]) == 3


# ----------------------------------------------------------------------------- API and jobs


@pytest.fixture
def api(runs):
    from fastapi.testclient import TestClient

    from prediction_machine.web.app import create_app
    from prediction_machine.web.settings import ServerSettings

    with TestClient(create_app(ServerSettings(max_training_jobs=1)), base_url="http://127.0.0.1") as c:
        yield c


def read_events(api, job_id):
    from conftest import read_sse

    return read_sse(api.post(f"/api/curriculum/jobs/{job_id}/events", json={"after": 0}))


SMALL_JOB = {"corpus_chars": 30_000, "vocab_size": 280, "steps": 400, "batch_size": 2, "context": 16,
             "eval_every": 2, "sample_every": 2}


def test_api_refuses_empty_and_too_big_text(api):
    r = api.post("/api/curriculum/pretrain", json={"text": ""})
    assert r.status_code == 422
    assert r.json()["error"] == "text: is empty: paste or upload some text to train on"
    r = api.post("/api/curriculum/pretrain", json={"text": "a" * (corpus.MAX_USER_CHARS + 1)})
    assert r.status_code in (413, 422) and "error" in r.json()
    r = api.post("/api/curriculum/pretrain", json={"text": "tiny"})
    assert r.status_code == 422 and "at least 500" in r.json()["error"]
    r = api.post("/api/curriculum/pretrain", json={"text": "a" * 600 + "\x07"})
    assert r.status_code == 422 and r.json()["error"].startswith("text: is not plain text")
    r = api.post("/api/curriculum/pretrain", json={"resume": "no-such-run"})
    assert r.status_code == 404 and r.json()["error"].startswith("resume: no pre-training run")
    r = api.post("/api/curriculum/pretrain", json={"steps": 0})
    assert r.status_code == 422 and r.json()["error"].startswith("steps:")
    r = api.post("/api/curriculum/finetune", json={"base": "../etc"})
    assert r.status_code == 422


def live_models() -> int:
    import gc

    from prediction_machine.model.transformer import Transformer

    gc.collect()
    return sum(type(o) is Transformer for o in gc.get_objects())


def test_api_job_runs_in_background_is_bounded_and_cancellable(api):
    models_before = live_models()
    t0 = time.perf_counter()
    r = api.post("/api/curriculum/pretrain", json=SMALL_JOB)
    assert r.status_code == 200 and time.perf_counter() - t0 < 5  # returns at once; training runs elsewhere
    job = r.json()["job"]
    busy = api.post("/api/curriculum/pretrain", json=SMALL_JOB)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "30"
    assert "already running" in busy.json()["error"]
    deadline = time.time() + 120
    while api.get(f"/api/curriculum/jobs/{job['id']}").json()["job"]["last_step"].get("step", 0) < 2:
        assert time.time() < deadline
        time.sleep(0.2)
    assert api.post(f"/api/curriculum/jobs/{job['id']}/pause").json()["job"]["id"] == job["id"]
    while api.get(f"/api/curriculum/jobs/{job['id']}").json()["job"]["status"] != "paused":
        assert time.time() < deadline
        time.sleep(0.1)
    api.post(f"/api/curriculum/jobs/{job['id']}/resume")
    api.post(f"/api/curriculum/jobs/{job['id']}/stop")
    evs = read_events(api, job["id"])
    names = [n for n, _ in evs]
    assert names[-1] == "done"
    assert api.get(f"/api/curriculum/jobs/{job['id']}").json()["job"]["status"] == "stopped"
    assert "paused" in names and "resumed" in names and "sample" in names
    done = [d for n, d in evs if n == "done"][0]
    assert done["reason"] == "stopped" and done["step"] < SMALL_JOB["steps"]
    runs = api.get("/api/curriculum/runs").json()["runs"]
    assert any(r["id"] == job["folder"] and r["status"] == "stopped" for r in runs)
    # The slot is free again.
    again = api.post("/api/curriculum/pretrain", json={**SMALL_JOB, "steps": 1})
    assert again.status_code == 200
    assert [n for n, _ in read_events(api, again.json()["job"]["id"])][-1] == "done"
    time.sleep(0.2)
    assert live_models() <= models_before  # the jobs' models were freed (an earlier idle batcher may end too)


def test_api_scale_panel(api):
    d = api.get("/api/curriculum/scale").json()
    assert d["flops_per_s"] > 1e8
    names = [r["name"] for r in d["rows"]]
    assert all(any(word in n for n in names) for word in ("GPT-2", "SmolLM2", "frontier"))
    for r in d["rows"]:
        assert r["seconds_here"] == pytest.approx(r["flops"] / d["flops_per_s"], rel=1e-4) and r["source"]
    gpt2 = d["rows"][0]
    assert gpt2["flops"] == pytest.approx(6 * 124e6 * 10e9)


def test_api_finetune_data_and_compare(api):
    d = api.get("/api/curriculum/finetune/data").json()
    assert d["count"] >= 300 and set(d["kinds"]) == {"plays", "manners", "refusal"}
    assert d["mask"][0]["text"] == "<|user|>"
    r = api.post("/api/curriculum/compare",
                 json={"question": "Who is Hamlet's mother?", "tuned": "shakespeare-base"})
    assert r.status_code == 200
    out = r.json()
    assert out["moved"] == pytest.approx(0, abs=1e-6)  # a model compared with itself moves nothing
    assert out["base"]["answer"] == out["tuned"]["answer"]
    assert api.post("/api/curriculum/compare", json={"question": "x", "tuned": "nope"}).status_code == 404


@pytest.mark.parametrize("route", ["/api/curriculum/compare", "/api/curriculum/align/compare"])
def test_a_question_longer_than_the_tiny_models_context_is_refused_with_its_limit(api, route):
    # The schema allows 200 characters, but 200 rare symbols are about a token each, past the
    # tiny models' 128-token context: a 422 naming the limit, not a 500 from deep inside.
    extra = {"tuned": "shakespeare-chat"} if route.endswith("/curriculum/compare") else {}
    r = api.post(route, json={"question": "{~" * 100, **extra})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("question: ") and "at most 128" in r.json()["error"]
    assert api.post(route, json={"question": "Who is Hamlet's mother?", **extra}).status_code == 200


# ----------------------------------------------------------------------------- LoRA (advanced)


def test_lora_starts_as_a_no_op_and_learns_without_touching_the_base(lm):
    from prediction_machine.training.curriculum import lora

    cfg = lora.LoraConfig(rank=4, alpha=8, layers=1, lr=1e-2)
    model, adapters = lora.adapted_model(lm, cfg)
    ids = torch.tensor([lm.prompt_ids("What is a cat?")])
    with torch.no_grad():
        assert torch.equal(model(ids)[0], lm.model(ids)[0])  # B = 0: exactly the original model
    before = {k: v.clone() for k, v in lm.model.state_dict().items() if "blocks.29.attn" in k}
    rows = [lora.encode(lm, q, a) for q, a in lora.PIRATE[:2]]
    trainable = [p for a in adapters for p in (a.A, a.B)]
    assert sum(p.numel() for p in trainable) < 0.001 * sum(p.numel() for p in lm.model.parameters())
    opt = torch.optim.AdamW(trainable, lr=cfg.lr)
    losses = []
    for _ in range(2):
        loss = lora.batch_loss(model, rows)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for k, v in before.items():
        assert torch.equal(lm.model.state_dict()[k], v)  # the shared base weights are untouched


def test_api_trains_on_the_learners_text(api, runs):
    text = corpus.shakespeare(20_000).train
    r = api.post("/api/curriculum/pretrain", json={**SMALL_JOB, "text": text, "steps": 2, "vocab_size": 270})
    assert r.status_code == 200
    job = r.json()["job"]
    evs = read_events(api, job["id"])
    start = [d for n, d in evs if n == "start"][0]
    assert start["corpus"]["name"] == "your text" and start["corpus"]["chars"] == len(text)
    assert (runs / job["folder"] / "corpus.txt").read_text() == text


def test_cli_finetune_writes_a_chat_checkpoint(tmp_path, capsys):
    from prediction_machine import cli

    out = tmp_path / "chat"
    assert cli.main(["finetune", "--steps", "2", "--batch-size", "2", "--out", str(out), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    done = lines[-1]
    assert done["event"] == "done" and done["step"] == 2 and done["eval_loss"] > 0
    assert cli.main(["generate", "--model", str(out), "Who is Hamlet's mother?", "--max-new-tokens", "3",
                     "--temperature", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["steps"]) >= 1
    assert cli.main(["finetune", "--base", str(tmp_path / "nothing")]) == 2
    assert "--base:" in capsys.readouterr().err
