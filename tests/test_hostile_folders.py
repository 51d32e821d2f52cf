"""Crafted --model folders: each is refused with one line and exit 2, before anything big is allocated.

Each case copies the tiny stub checkpoint (tests/hostile_model.py) or writes a Hugging Face-style
folder, breaks one thing, and runs `prediction-machine generate --model <folder>` in process. The
chat template, code that ships with a downloaded model, renders in jinja2's sandbox with a bound on
its time and on the size of what it writes.
"""

from __future__ import annotations

import json
import shutil
import time
import tracemalloc

import pytest
from hostile_model import CHATML

from prediction_machine.cli import main
from prediction_machine.model import chat, folder_checks

OWN = "prediction-machine.json"


def own(meta: dict) -> dict:
    return meta


def with_config(**changes):
    def change(meta: dict) -> dict:
        return {**meta, "config": {**meta["config"], **changes}}
    return change


# name -> (file to replace, its new content: bytes, or a function of the stub's metadata)
OWN_CASES = {
    "metadata not JSON": (OWN, b"{not json"),
    "metadata a list": (OWN, b"[]"),
    "config missing": (OWN, lambda m: {"format": m["format"]}),
    "config empty": (OWN, lambda m: {**m, "config": {}}),
    "config with a string size": (OWN, with_config(d_model="64")),
    "config with a negative size": (OWN, with_config(n_layers=-1)),
    "config with a zero size": (OWN, with_config(n_heads=0)),
    "config asking for 80 GB": (OWN, with_config(vocab_size=1_000_000, d_model=20_480)),
    "config with too big a vocabulary": (OWN, with_config(vocab_size=2_500_000)),
    "config with a huge context": (OWN, with_config(max_seq_len=10**12)),
    "config with a float size": (OWN, with_config(d_ff=1e300)),
    "weights not safetensors": ("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage"),
    "weights of another shape": (OWN, with_config(d_model=128)),
    "tokenizer not JSON": ("tokenizer.json", b"\xff\xfe"),
    "tokenizer of another kind": ("tokenizer.json", b'{"model": {"type": "Nonsense"}}'),
    "template that does not parse": (OWN, lambda m: {**m, "chat_template": "{% for %}"}),
    "template that is not text": (OWN, lambda m: {**m, "chat_template": {"a": 1}}),
}
HF_CASES = {
    "hf config not JSON": b"{",
    "hf config without heads": json.dumps({"hidden_size": 64, "vocab_size": 10}).encode(),
    "hf config with zero heads": json.dumps({"hidden_size": 64, "num_attention_heads": 0}).encode(),
    "hf config asking for 80 GB": json.dumps({
        "hidden_size": 8192, "num_attention_heads": 64, "num_hidden_layers": 80, "intermediate_size": 28672,
        "vocab_size": 128256}).encode(),
}


def run_cli(capsys, folder) -> tuple[int, str]:
    code = main(["generate", "hi", "--max-new-tokens", "1", "--model", str(folder)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", list(OWN_CASES))
def test_a_crafted_own_folder_is_one_line_and_exit_2(stub, tmp_path, capsys, case):
    folder = tmp_path / "crafted"
    shutil.copytree(stub, folder)
    name, content = OWN_CASES[case]
    if callable(content):
        content = json.dumps(content(json.loads((folder / OWN).read_text()))).encode()
    (folder / name).write_bytes(content)
    t0 = time.perf_counter()
    code, err = run_cli(capsys, folder)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (case, code, err[-600:])
    assert "Traceback" not in err and time.perf_counter() - t0 < 10
    assert str(tmp_path) not in err  # the folder by its name: a server's health answer carries this line


@pytest.mark.parametrize("case", list(HF_CASES))
def test_a_crafted_hf_folder_is_one_line_and_exit_2(stub, tmp_path, capsys, case):
    folder = tmp_path / "crafted"
    folder.mkdir()
    (folder / "config.json").write_bytes(HF_CASES[case])
    shutil.copy(f"{stub}/tokenizer.json", folder / "tokenizer.json")
    shutil.copy(f"{stub}/model.safetensors", folder / "model.safetensors")
    code, err = run_cli(capsys, folder)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (case, code, err[-600:])


def test_a_config_is_held_to_free_memory_before_anything_is_allocated(monkeypatch):
    monkeypatch.setattr(folder_checks, "available_bytes", lambda: 8e9)
    sizes = {"vocab_size": 1_000_000, "d_model": 20_480, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2,
             "d_ff": 128, "max_seq_len": 256}
    with pytest.raises(ValueError, match=r"asks for 92\.0 GB of weights .* has 8\.0 GB free"):
        folder_checks.checked_config(sizes)
    assert folder_checks.checked_config({**sizes, "vocab_size": 1000, "d_model": 64}).d_model == 64


@pytest.mark.parametrize("template", [
    "{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",  # writes nothing
    "{{ 'x' * 1000000000 }}",
    "{{ '%0999999999d' % 1 }}",
])
def test_a_template_is_bounded_in_time_and_output(template):
    t0 = time.thread_time()  # CPU time, as the bound is: a busy machine stretches the wall time
    with pytest.raises(chat.TemplateError, match="chat template"):
        chat.render(template, [{"role": "user", "content": "hi"}])
    assert time.thread_time() - t0 < 2 * chat.RENDER_SECONDS


@pytest.mark.parametrize("template", [
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'.center(10**9) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ 'a\nb'|indent(10**9) }}",
    "{{ '{:999999999}'.format(1) }}",
    "{{ '{:{}}'.format(1, 10**9) }}",
    "{{ '%0999999999d'|format(1) }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{% set s = 'x' * 1000 %}{{ s|replace('', s)|replace('', s) }}",
    "{{ (range(100000)|list)|join('x' * 100000) }}",
    "{{ 'x' * 100000 ~ ('x' * 999999) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{{ lipsum(n=100000) }}",
    "{{ [1]|batch(10**9, 'x')|list }}",
])
def test_a_template_is_refused_before_it_allocates_a_huge_result(template):
    """Width and count arguments are checked before the work is done, not after: the render's
    peak memory stays far under what the call would allocate."""
    tracemalloc.start()
    try:
        with pytest.raises(chat.TemplateError, match="chat template"):
            chat.render(template, [{"role": "user", "content": "hi"}])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * chat.RENDER_CHARS, f"{peak / 1e6:.0f} MB allocated"


def test_an_ordinary_template_still_renders():
    text = chat.render(CHATML, [{"role": "user", "content": "hi"}])
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
