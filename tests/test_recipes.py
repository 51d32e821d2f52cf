"""Named recipes rebuild the shipped models, and every run keeps one record schema.

The recipes (training/curriculum/recipes.py) are files; these tests hold each one equal to what its
shipped model's run.json says was used, round-trip each file, and rebuild two at a few steps.
"""

from __future__ import annotations

import json

import pytest

from prediction_machine.cli import main
from prediction_machine.model.models import shipped_checkpoint
from prediction_machine.sequences import shipped
from prediction_machine.training.curriculum import dpo, finetune, recipes
from prediction_machine.training.curriculum.checkpoint import read_model, read_record

SHIPPED = {"shakespeare-base": shipped_checkpoint("shakespeare-base"),
           "shakespeare-chat": shipped_checkpoint("shakespeare-chat"),
           "shakespeare-dpo": shipped_checkpoint("shakespeare-dpo"),
           "digits": shipped.shipped("digits"), "melody": shipped.shipped("melody")}


pytestmark = pytest.mark.usefixtures("one_thread")  # torch on one thread for this module (conftest.py)


def test_every_shipped_model_has_a_recipe_with_its_recorded_settings():
    assert sorted(recipes.names()) == sorted(SHIPPED)
    for name, folder in SHIPPED.items():
        recipe, record = recipes.get(name), read_record(folder)
        assert recipe.config.to_dict() == record["config"], name  # every field, as the run recorded it
        assert recipe.name == name and recipe.trainer in recipes.TRAINERS
        assert recipe.base == record.get("base"), name  # it starts from the model the run started from
    assert recipes.get("shakespeare-chat").config.steps == 600 != finetune.FinetuneConfig().steps
    assert dpo.RECIPE == recipes.get("shakespeare-dpo").config


def test_recipe_files_round_trip(tmp_path):
    for name in recipes.names():
        path = recipes.folder() / f"{name}.json"
        recipe = recipes.load(path)
        recipes.save(recipe, tmp_path / "again.json")
        again = recipes.load(tmp_path / "again.json")
        assert again == recipe and type(again.config) is type(recipe.config)
        assert (tmp_path / "again.json").read_text() == path.read_text()  # the file is its own canonical form
    shorter = recipes.get("digits").with_steps(7)
    assert shorter.config.steps == 7 and shorter.config.lr == recipes.get("digits").config.lr


def test_shipped_records_share_one_schema():
    """Same field names everywhere; tokens are the predicted ones; FLOPs are 6 x parameters x tokens."""
    for name, folder in SHIPPED.items():
        r = read_record(folder)
        schema = {"kind", "config", "parameters", "step", "tokens", "seconds", "flops", "status", "history"}
        assert schema <= set(r), name
        assert {"step", "loss", "lr", "eval", "samples"} <= set(r["history"]), name
        assert r["flops"] == pytest.approx(6 * r["parameters"] * r["tokens"]), name
        assert r["step"] == r["config"]["steps"] == len(r["history"]["loss"]) and r["status"] == "finished"
        for old in ("val_loss", "held_out_nll"):
            assert all(old not in e for e in r["history"]["eval"]), (name, old)
        if r["kind"] != "dpo":  # DPO's held-out numbers are accuracies and KL, not a loss
            assert all(e["eval_loss"] > 0 for e in r["history"]["eval"]), name
    assert not (SHIPPED["shakespeare-dpo"] / "measurements.json").exists()
    assert not any((f / "recipe.json").exists() for f in SHIPPED.values())


def test_a_recipe_rebuilds_at_a_few_steps(tmp_path, capsys):
    out = tmp_path / "digits"
    assert main(["sequences-train", "--recipe", "digits", "--steps", "4", "--out", str(out), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events].count("step") == 4 and events[-1]["event"] == "done"
    record = read_record(out)
    expected = recipes.get("digits").with_steps(4).config
    assert record["config"] == {**expected.to_dict(), "warmup": 1}  # a shorter run warms up for a tenth
    assert record["step"] == 4 and record["history"]["eval"][-1]["eval_loss"] == events[-1]["eval_loss"]
    assert read_model(out).cfg == shipped.load("digits").cfg  # the shipped model's very shape

    chat = tmp_path / "chat"
    args = ["finetune", "--recipe", "shakespeare-chat", "--steps", "2", "--out", str(chat), "--json"]
    assert main(args) == 0
    capsys.readouterr()
    record = read_record(chat)
    assert record["config"] == recipes.get("shakespeare-chat").with_steps(2).config.to_dict()
    assert record["base"] == "shakespeare-base" and record["tokens"] > 0


def test_recipe_names_are_checked_with_a_clear_message(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it before any work starts
        main(["pretrain", "--recipe", "shakespeare-large"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "unknown recipe 'shakespeare-large'" in err
    assert "shakespeare-base (pretrain)" in err and "digits (sequences-train)" in err
    with pytest.raises(SystemExit):
        main(["pretrain", "--recipe", "shakespeare-chat"])
    assert "a recipe of `finetune`, not of `pretrain`" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown recipe"):
        recipes.get("nothing")


def test_a_record_from_before_the_one_schema_reads_in_it(tmp_path):
    evals = [{"step": 1, "train_loss": 4.0, "val_loss": 4.2}, {"step": 2, "held_out_nll": 3.9}]
    old = {"kind": "pretrain", "step": 2, "history": {"eval": evals}}
    (tmp_path / "run.json").write_text(json.dumps(old))
    evals = read_record(tmp_path)["history"]["eval"]
    assert evals == [{"step": 1, "train_loss": 4.0, "eval_loss": 4.2}, {"step": 2, "eval_loss": 3.9}]


@pytest.mark.parametrize("name", ["digits", "shakespeare-chat",
                                  pytest.param("shakespeare-dpo", marks=pytest.mark.slow),
                                  pytest.param("shakespeare-base", marks=pytest.mark.slow),
                                  pytest.param("melody", marks=pytest.mark.slow)])
def test_a_recipe_retraces_its_shipped_run(name, tmp_path):
    """The recipe at its full length, stopped after 3 steps: the loss curve starts as the shipped one did.

    Same settings, same per-step batch seeds, same schedule: the first losses agree to float rounding
    (the record keeps 5 decimals; another CPU may round the last digits differently).
    """
    from prediction_machine.sequences import train
    from prediction_machine.training.curriculum import pretrain

    recipe, shipped_record = recipes.get(name), read_record(SHIPPED[name])
    seen: list[int] = []

    def stop() -> bool:
        return len(seen) >= 3
    if recipe.trainer == "sequences":
        events = train.train(recipe.config, None, should_stop=stop)
    elif recipe.trainer == "pretrain":
        events = pretrain.pretrain(recipe.config, tmp_path / "run", should_stop=stop)
    elif recipe.trainer == "finetune":
        events = finetune.finetune(recipe.config, SHIPPED[recipe.base], tmp_path / "run", should_stop=stop)
    else:
        events = dpo.dpo(recipe.config, SHIPPED[recipe.base], tmp_path / "run", should_stop=stop,
                         sft_name=recipe.base)
    losses = []
    for event, data in events:
        if event == "step":
            seen.append(data["step"])
            losses.append(data["loss"])
    assert seen == [1, 2, 3]
    assert losses == pytest.approx(shipped_record["history"]["loss"][:3], abs=2e-4), name
