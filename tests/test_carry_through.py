"""The learner's own work carries through: a run's base is read from its run.json, and a short text of
one's own still trains (on a shorter window). The page's side of both is in test_carry_through_browser.py."""

from __future__ import annotations

import pytest

from prediction_machine.training.curriculum import corpus, pretrain, runs

# About 500 characters of plain prose, none of it Shakespeare: the shortest text the page accepts.
PROSE = ("My grandmother kept bees behind the old barn. Every spring she opened the hives, lifted the "
         "frames one by one and looked for the queen, a long slim bee that the others gave room to. She "
         "taught me to move slowly, to breathe out and never to swat. In July we took the honey, cut the "
         "wax caps with a warm knife and let the frames spin in a drum until the honey ran down the "
         "sides. The kitchen smelled of it for days. In winter the hives were quiet, and she would put "
         "her ear to the wood and tell me that the bees were still there, humming to keep warm.")


def test_the_shortest_text_of_ones_own_trains_on_a_window_that_fits(tmp_path):
    assert corpus.MIN_USER_CHARS <= len(PROSE) < corpus.MIN_USER_CHARS + 60
    cfg = pretrain.live_config(steps=2, eval_every=1, sample_every=2)
    assert cfg.context == 64  # the page's window, which this text's held-out tenth cannot fill
    events = dict(pretrain.pretrain(cfg, tmp_path / "run", corpus=corpus.user_text(PROSE)))
    tok = events["tokenizer"]
    assert tok["context_asked"] == 64 and pretrain.MIN_CONTEXT <= tok["context"] < 64, tok
    assert tok["context"] == min(tok["train_tokens"], tok["val_tokens"]) - 2  # the longest that fits
    assert events["done"]["step"] == 2
    assert runs.read_run(tmp_path / "run")["config"]["context"] == tok["context"]


def test_a_text_that_packs_into_too_few_tokens_is_refused_in_plain_words(tmp_path):
    cfg = pretrain.live_config(steps=2)
    with pytest.raises(ValueError, match=r"only \d+ tokens to hold out .* add more text"):
        list(pretrain.pretrain(cfg, tmp_path / "run", corpus=corpus.user_text("ab" * 300)))


def test_a_run_records_its_base_and_the_runs_list_says_it():
    assert runs.base_of("shakespeare-chat") == "shakespeare-base"
    assert runs.base_of("shakespeare-base") is None
    chat = next(r for r in runs.list_runs() if r["id"] == "shakespeare-chat")
    assert chat["base"] == "shakespeare-base" and chat["first_eval"]["step"] == 0
    assert runs.recorded_base({"base": "/elsewhere/model"}) is None  # a path is never a base name
