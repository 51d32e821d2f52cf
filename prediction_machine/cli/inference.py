"""The inference commands: models, tokenize, generate, attention, serve."""

from __future__ import annotations

import os

from rich import box
from rich.table import Table

from prediction_machine.cli.output import UsageError, check_temperature, console, emit, load_model, visible


def cmd_models(args) -> None:
    from prediction_machine.model import models

    entries = models.registry()
    if args.json:
        from prediction_machine.engine import layout_probe  # the weight layouts measured on this machine

        emit({"default": models.DEFAULT_MODEL, "models": [e.__dict__ for e in entries.values()],
              "layouts": layout_probe.stored_here()})
        return
    width = min(console.width, 80)
    table = Table(title="Models (--model NAME; * the default)", box=box.SIMPLE, width=width)
    table.add_column("name", no_wrap=True)
    table.add_column("reads", no_wrap=True)
    table.add_column("what it is; its weights", overflow="fold")
    for e in entries.values():
        star = " *" if e.name == models.DEFAULT_MODEL else ""
        table.add_row(e.name + star, e.kind, f"{e.description}\n{e.where}")
    console.print(table)
    console.print("Text models work with generate, tokenize, attention and serve; digits with `draw`, "
                  "melody with `compose`. Any local Llama-family checkpoint folder (config.json, "
                  "*.safetensors, tokenizer.json) also works: --model PATH", width=width)


def cmd_tokenize(args) -> None:
    lm = load_model(args.model)
    tokens = lm.tokenizer.encode(args.text)
    if args.json:
        emit({"tokens": [{"id": t.id, "text": t.text, "start": t.start, "end": t.end} for t in tokens]})
        return
    table = Table(title=plural(len(tokens), "token"))
    for col in ("#", "id", "text", "chars"):
        table.add_column(col)
    for n, t in enumerate(tokens):
        text = visible(t.text) + ("  (part of a character)" if t.partial else "")
        table.add_row(str(n), str(t.id), text, f"{t.start}:{t.end}")
    console.print(table)


def cmd_generate(args) -> None:
    from prediction_machine.inference.generation import generate
    from prediction_machine.inference.sampling import SamplingParams
    from prediction_machine.inference.tokenizer import StreamDecoder

    try:
        params = SamplingParams(check_temperature(args.temperature), args.top_k, args.top_p, args.min_p)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    lm = load_model(args.model)
    lm.set_precision(args.precision)
    ids = lm.prompt_ids(args.prompt, chat=args.chat)
    if not ids:
        raise UsageError("the prompt is empty: give some text to continue")
    if len(ids) + args.max_new_tokens > lm.config.max_seq_len:
        raise UsageError(f"the prompt is {plural(len(ids), 'token')} and "
                         f"--max-new-tokens {args.max_new_tokens}; "
                         f"together they exceed the context of {lm.config.max_seq_len}")
    decoder, steps, text = StreamDecoder(lm.tokenizer), [], []
    for step in generate(lm.decoder, ids, params, args.max_new_tokens, lm.stop_ids, args.seed, args.top):
        piece = "" if step.id in lm.stop_ids else decoder.push(step.id)
        text.append(piece)
        if args.json:
            steps.append({
                "id": step.id,
                "token": lm.tokenizer.token(step.id).text,
                "prob": step.prob,  # what the draw used (after temperature and the filters)
                "model_prob": step.model_prob,  # the model's own (temperature 1, no filters)
                "top": [{"id": r.id, "token": lm.tokenizer.token(r.id).text, "prob": r.prob,
                         "model_prob": r.model_prob, "logit": r.logit}
                        for r in (step.prediction.rows if step.prediction else [])],
            })
        else:
            print(piece, end="", flush=True)
    text.append(decoder.flush())
    if args.json:
        emit({"text": "".join(text), "steps": steps})
    else:
        print()


def cmd_attention(args) -> None:
    from prediction_machine.training import attention

    lm = load_model(args.model)
    tokens = lm.tokenizer.encode(args.text)
    if not tokens:
        raise UsageError("the text is empty: give a sentence")
    limit = attention.MAX_TOKENS if not args.no_limit else lm.config.max_seq_len
    if len(tokens) > limit:
        raise UsageError(f"the text is {plural(len(tokens), 'token')}; the limit is {limit} "
                         "(pass --no-limit to lift it)")
    checks = (("--layer", args.layer, lm.config.n_layers), ("--head", args.head, lm.config.n_heads))
    for flag, value, top in checks:
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
        layers = [args.layer] if args.layer is not None else list(range(lm.config.n_layers))
        emit({"tokens": texts, "layers": layers,
              "heads": [args.head] if args.head is not None else list(range(lm.config.n_heads)),
              "words": [{"text": w.text, "tokens": w.tokens} for w in explained.words],
              "attention": [[[[round(v, 6) for v in row] for row in h] for h in layer]
                            for layer in att.tolist()]})
        return
    mat = att.mean(dim=(0, 1))  # (T, T): the average over the selected layers and heads
    layer = args.layer if args.layer is not None else "mean"
    head = args.head if args.head is not None else "mean"
    console.print(f"Attention (layer {layer}, head {head}), in percent: row = the token attending, "
                  "column = the token attended to")
    for line in attention_lines(texts, mat.tolist(), console.width):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    split = [w for w in explained.words if len(w.tokens) > 1]
    if split:
        console.print("Words split into several tokens: " + ", ".join(
            " | ".join(visible(texts[i]) for i in w.tokens) for w in split))


def plural(n: int, word: str) -> str:
    """'1 token', '2 tokens'."""
    return f"{n:,} {word if n == 1 else word + 's'}"


def attention_lines(texts: list[str], mat: list[list[float]], width: int = 80) -> list[str]:
    """The attention matrix as plain lines no wider than `width`: whole percentages, '·' for the future.

    Columns that do not fit are left out, from the right, and a last line says how many.
    """
    def label(text: str, n: int) -> str:
        v = visible(text)
        return v if len(v) <= n else v[: n - 1] + "…"

    def cell(q: int, k: int) -> str:
        return "·" if k > q else f"{round(mat[q][k] * 100)}"

    rows = [label(t, 12) for t in texts]
    left = max(len(r) for r in rows)
    heads = [label(t, 6) for t in texts]
    widths = [max(3, len(h)) for h in heads]
    shown, used = 0, left
    while shown < len(texts) and used + 1 + widths[shown] <= width:
        used += 1 + widths[shown]
        shown += 1
    shown = max(shown, 1)
    lines = [" " * left + "".join(" " + heads[k].rjust(widths[k]) for k in range(shown))]
    lines += [rows[q].rjust(left) + "".join(" " + cell(q, k).rjust(widths[k]) for k in range(shown))
              for q in range(len(texts))]
    if shown < len(texts):
        lines.append(f"First {plural(shown, 'column')} of {len(texts)} shown, to fit {width} characters; "
                     "--json has all.")
    return lines


def cmd_serve(args) -> None:
    # The only imports of web/ from outside it: the library and the other commands work without it.
    # The socket is bound, and the page and health answer on it, before PyTorch and the web
    # framework are imported: they are most of the start-up (web/early.py).
    missing = "serve needs the web part of prediction-machine, which is missing here ({})"
    try:
        from prediction_machine.web.early import TOKEN_ENV, open_early
    except ImportError as e:
        raise UsageError(missing.format(e.name)) from None
    try:
        early = open_early(args.host, args.port, bool(args.token or os.environ.get(TOKEN_ENV)))
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}; "
                         "is another server running there? Choose another with --port") from None
    try:
        try:
            from prediction_machine.web.serve import ServeError, serve
        except ImportError as e:
            raise UsageError(missing.format(e.name)) from None
        try:
            serve(args, early=early)
        except ServeError as e:
            raise UsageError(str(e)) from None
    finally:
        early.stop()
        early.sock.close()
