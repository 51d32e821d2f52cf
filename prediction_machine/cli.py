"""The command line: `prediction-machine <command>`, or `python -m prediction_machine <command>`.

Every command prints readable output for people, or JSON with --json for scripts. Bad input
gets one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from rich.console import Console
from rich.table import Table

from .config import ServerSettings

console = Console(stderr=False, highlight=False)


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


# ----------------------------------------------------------------------------- helpers


def load_model(name: str | None):
    from . import models
    from .weights import WeightsError

    try:
        with console.status(f"loading {name or models.DEFAULT_MODEL} ...") if sys.stdout.isatty() else _null():
            return models.load(name)
    except WeightsError as e:
        raise UsageError(str(e)) from None


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def visible(text: str) -> str:
    """Make whitespace visible in terminal tables: ' ' -> '␣', '\\n' -> '↵'."""
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")


def check_prompt(lm, ids: list[int], max_new: int = 0) -> None:
    if len(ids) + max_new > lm.config.max_seq_len:
        raise UsageError(
            f"the prompt is {len(ids)} tokens and --max-new-tokens {max_new}; together they exceed the context of {lm.config.max_seq_len}"
        )


def emit(data: dict) -> None:
    print(json.dumps(data, ensure_ascii=False, allow_nan=False))


# ----------------------------------------------------------------------------- commands


def cmd_models(args) -> None:
    from . import models

    entries = models.registry()
    if args.json:
        emit({"default": models.DEFAULT_MODEL, "models": [e.__dict__ for e in entries.values()]})
        return
    table = Table(title="Models")
    for col in ("name", "description", "where the weights come from"):
        table.add_column(col, overflow="fold")
    for e in entries.values():
        table.add_row(e.name + (" (default)" if e.name == models.DEFAULT_MODEL else ""), e.description, e.where)
    console.print(table)
    console.print("Any local Llama-family checkpoint folder (config.json, *.safetensors, tokenizer.json) also works: --model PATH")


def cmd_tokenize(args) -> None:
    lm = load_model(args.model)
    tokens = lm.tokenizer.encode(args.text)
    if args.json:
        emit({"tokens": [{"id": t.id, "text": t.text, "start": t.start, "end": t.end} for t in tokens]})
        return
    table = Table(title=f"{len(tokens)} tokens")
    for col in ("#", "id", "text", "chars"):
        table.add_column(col)
    for n, t in enumerate(tokens):
        table.add_row(str(n), str(t.id), visible(t.text) + ("  (part of a character)" if t.partial else ""), f"{t.start}:{t.end}")
    console.print(table)


def cmd_generate(args) -> None:
    from .generation import generate
    from .sampling import SamplingParams
    from .tokenizer import StreamDecoder

    try:
        params = SamplingParams(args.temperature, args.top_k, args.top_p, args.min_p)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    lm = load_model(args.model)
    lm.set_precision(args.precision)
    ids = lm.prompt_ids(args.prompt, chat=args.chat)
    if not ids:
        raise UsageError("the prompt is empty: give some text to continue")
    check_prompt(lm, ids, args.max_new_tokens)
    decoder, steps, text = StreamDecoder(lm.tokenizer), [], []
    for step in generate(lm.engine, ids, params, args.max_new_tokens, lm.stop_ids, args.seed, args.top):
        piece = "" if step.id in lm.stop_ids else decoder.push(step.id)
        text.append(piece)
        if args.json:
            steps.append({
                "id": step.id,
                "token": lm.tokenizer.token(step.id).text,
                "prob": step.prob,
                "top": [{"id": r.id, "token": lm.tokenizer.token(r.id).text, "prob": r.prob, "logit": r.logit}
                        for r in step.prediction.rows],
            })
        else:
            print(piece, end="", flush=True)
    text.append(decoder.flush())
    if args.json:
        emit({"text": "".join(text), "steps": steps})
    else:
        print()


def cmd_attention(args) -> None:
    from . import attention

    lm = load_model(args.model)
    tokens = lm.tokenizer.encode(args.text)
    if not tokens:
        raise UsageError("the text is empty: give a sentence")
    limit = ServerSettings().max_attention_tokens if not args.no_limit else lm.config.max_seq_len
    if len(tokens) > limit:
        raise UsageError(f"the text is {len(tokens)} tokens; the limit is {limit} (pass --no-limit to lift it)")
    for flag, value, top in (("--layer", args.layer, lm.config.n_layers), ("--head", args.head, lm.config.n_heads)):
        if value is not None and not 0 <= value < top:
            raise UsageError(f"{flag} must be in 0..{top - 1}, got {value}")
    explained = attention.explain(lm, args.text)  # the same function the page's API calls
    att = explained.attention  # (L, H, T, T)
    if args.layer is not None:
        att = att[args.layer : args.layer + 1]
    if args.head is not None:
        att = att[:, args.head : args.head + 1]
    texts = [t.text for t in tokens]
    if args.json:
        emit({"tokens": texts, "layers": [args.layer] if args.layer is not None else list(range(lm.config.n_layers)),
              "heads": [args.head] if args.head is not None else list(range(lm.config.n_heads)),
              "words": [{"text": w.text, "tokens": w.tokens} for w in explained.words],
              "attention": [[[[round(v, 6) for v in row] for row in h] for h in layer] for layer in att.tolist()]})
        return
    mat = att.mean(dim=(0, 1))  # (T, T): the average over the selected layers and heads
    where = f"layer {args.layer if args.layer is not None else 'mean'}, head {args.head if args.head is not None else 'mean'}"
    table = Table(title=f"Attention ({where}): row = the token attending, column = the token attended to")
    table.add_column("")
    for t in texts:
        table.add_column(visible(t), justify="right")
    for q, row in enumerate(mat.tolist()):
        table.add_row(visible(texts[q]), *[("·" if k > q else f"{v:.2f}") for k, v in enumerate(row)])
    console.print(table)
    split = [w for w in explained.words if len(w.tokens) > 1]
    if split:
        console.print("Words split into several tokens: " + ", ".join(
            " | ".join(visible(texts[i]) for i in w.tokens) for w in split))


def cmd_serve(args) -> None:
    from .server import serve

    serve(args)


# ----------------------------------------------------------------------------- the parser


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


PRECISIONS = ("fp32", "fp32-fused")  # fastpath.PRECISIONS, named here so the CLI starts without torch


def precision_option(sp) -> None:
    sp.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="numeric path for generation: fp32 = the textbook code (default); fp32-fused = the "
                         "same float32 math with fused, pre-transposed matrices (faster, see fastpath.py)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prediction-machine",
        description="The Magic of Prediction: watch a real language model predict, one token at a time.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, model=True):
        sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if model:
            sp.add_argument("--model", default=None, help="a name from `models`, or a checkpoint folder (default: SmolLM2-135M-Instruct)")

    s = sub.add_parser("serve", help="run the guide's web page and JSON API")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; anything else needs --token)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--model", default=None, help="model the page uses (default: SmolLM2-135M-Instruct)")
    s.add_argument("--token", default=None, help="access token required by every API call (classroom mode)")
    s.add_argument("--max-running", type=int, default=ServerSettings.max_running, help="generations computed at once")
    s.add_argument("--max-queued", type=int, default=ServerSettings.max_queued, help="generations allowed to wait")
    precision_option(s)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("models", help="list the available models and where each comes from")
    common(s, model=False)
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("tokenize", help="split text into tokens, with ids and character offsets")
    s.add_argument("text")
    common(s)
    s.set_defaults(func=cmd_tokenize)

    s = sub.add_parser("generate", help="continue a prompt token by token")
    s.add_argument("prompt")
    s.add_argument("--max-new-tokens", type=int, default=64, help="stop after this many new tokens (default 64)")
    s.add_argument("--temperature", type=_float, default=0.7, help="0 = greedy; higher = more random (default 0.7)")
    s.add_argument("--top-k", type=int, default=0, help="keep only the k most likely tokens (0 = off)")
    s.add_argument("--top-p", type=_float, default=1.0, help="nucleus sampling threshold in (0, 1] (1 = off)")
    s.add_argument("--min-p", type=_float, default=0.0, help="drop tokens below min-p x the top probability (0 = off)")
    s.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same text")
    s.add_argument("--top", type=int, default=5, help="alternatives to report per step in --json (default 5)")
    precision_option(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--chat", dest="chat", action="store_true", default=True, help="wrap the prompt in the chat template (default)")
    g.add_argument("--raw", dest="chat", action="store_false", help="feed the prompt as it is")
    common(s)
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("attention", help="show which earlier tokens each token attends to")
    s.add_argument("text")
    s.add_argument("--layer", type=int, default=None, help="one layer (default: all, averaged in the table)")
    s.add_argument("--head", type=int, default=None, help="one head (default: all, averaged in the table)")
    s.add_argument("--no-limit", action="store_true", help="allow sentences longer than the page's limit")
    common(s)
    s.set_defaults(func=cmd_attention)

    for register in _extra_commands():
        register(sub)
    return p


def _extra_commands():
    """Commands that live beside the concept they drive (backprop, curriculum)."""
    from .backprop.command import register as backprop
    from .curriculum_command import register as curriculum

    return [backprop, curriculum]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
