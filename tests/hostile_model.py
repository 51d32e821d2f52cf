"""A tiny stub model whose favourite tokens are attacks on the page (for the security tests).

It is a real checkpoint of this project's decoder (random weights, built in a second), with
a byte-level BPE vocabulary of the 256 byte tokens plus whole-token strings such as
`<script>alert(1)</script>`. The embeddings are tilted so that sampling picks those hostile
tokens most of the time: every generated step, probability table and token chip of the page
then holds markup that must show as text. It is a stand-in, and says so in its name.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from prediction_machine.config import ModelConfig
from prediction_machine.inference.tokenizer import byte_alphabet, tokenizer_json_from_vocab
from prediction_machine.model.transformer import Transformer
from prediction_machine.model.weights import save_checkpoint

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "</td><b>bold?</b>",
    "\u202eevil\u202c",  # right-to-left override
    "zero\u200bwidth",  # zero-width space inside
    "line\nbreak",
    " leading",
    "&lt;amp&gt;",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CONFIG = ModelConfig(
    vocab_size=0, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128, max_seq_len=256,
    rope_base=10000.0,
)


def _byte_level(text: str) -> str:
    table = byte_alphabet()
    return "".join(table[b] for b in text.encode("utf-8"))


def build(folder: Path, seed: int = 0) -> Path:
    """Write the stub checkpoint into `folder` (once) and return it."""
    folder = Path(folder)
    if (folder / "prediction-machine.json").is_file():
        return folder
    table = byte_alphabet()
    vocab = [table[b] for b in range(256)] + [_byte_level(h) for h in HOSTILE] + SPECIALS
    n = len(vocab)
    special_ids = list(range(n - len(SPECIALS), n))
    tok_json = tokenizer_json_from_vocab(vocab, [], special_ids)
    cfg = ModelConfig(**{**CONFIG.to_dict(), "vocab_size": n})
    torch.manual_seed(seed)
    model = Transformer(cfg)
    with torch.no_grad():
        w = model.embed.weight  # (V, D)
        w[:, 0] = 1.0  # every token pushes along dimension 0 ...
        w[256:256 + len(HOSTILE), 0] = 6.0  # ... and the hostile ones score highest along it
        w[special_ids, 0] = -2.0  # rarely stop: long, hostile generations
    eos = vocab.index("<|im_end|>")
    save_checkpoint(folder, model, tok_json, extra={
        "chat_template": CHATML, "bos_id": None, "eos_id": eos,
        "note": "stub model for the security tests: random weights, hostile vocabulary",
    })
    return folder


def hostile_ids(lm) -> dict[str, int]:
    return {h: 256 + i for i, h in enumerate(HOSTILE)}


if __name__ == "__main__":
    import sys

    print(json.dumps(str(build(Path(sys.argv[1])))))


class LiveServer:
    """Run an app under a real uvicorn in a background thread (real sockets, real disconnects).

    Cheaper than a subprocess: the app shares this process's already-loaded model.
    """

    def __init__(self, app):
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        # Idle kept-alive connections live 30 s: a test's httpx client reuses one for up to 5 s, as long as
        # uvicorn's default, so a request sent at that edge met a socket the server had just closed
        # ("Connection reset by peer", once in a full run).
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, timeout_keep_alive=30)
        self.server = uvicorn.Server(config)

    def __enter__(self) -> "LiveServer":
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, name="pm-test-uvicorn", daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
