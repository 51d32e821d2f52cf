"""The command line: `prediction-machine <command>`, or `python -m prediction_machine <command>`.

Every command prints readable output for people, or JSON with --json for scripts. Bad input
gets one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from prediction_machine import limits
from prediction_machine.cli import (
    align,
    backprop,
    curriculum,
    experiments,
    inference,
    inside,
    makes_up,
    record,
    sequences,
    what_if,
)
from prediction_machine.cli.output import UsageError, finite
from prediction_machine.config import DEFAULT_PRECISION, PRECISIONS
from prediction_machine.engine.allocator import keep_freed_memory


def precision_option(sp) -> None:
    sp.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                    help="numeric path for generation: fp32-fused = float32 with fused matrices packed "
                         "for oneDNN (the default: same tokens, faster, see fastpath.py); "
                         "fp32 = the textbook code itself")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prediction-machine",
        description="The Magic of Prediction: watch a real language model predict, one token at a time.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(sp, model=True):
        sp.add_argument("--json", action="store_true", help="print JSON instead of a table")
        if model:
            sp.add_argument("--model", default=None,
                            help="a name from `models`, or a checkpoint folder (default: SmolLM2)")

    s = sub.add_parser("serve", help="run the guide's web page and JSON API")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default loopback; anything else needs --token)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--model", default=None, help="model the page uses (default: SmolLM2-135M-Instruct)")
    s.add_argument("--token", default=None, help="access token required by every API call (classroom mode)")
    # The defaults are ServerSettings' (web/settings.py, listed in docs/settings.md): not imported here,
    # because building the parser must stay fast and the other commands must not need web/.
    s.add_argument("--max-running", type=int, default=None,
                   help="generations computed at once (default: max_running in docs/settings.md)")
    s.add_argument("--max-queued", type=int, default=None,
                   help="generations allowed to wait (default: max_queued in docs/settings.md)")
    s.add_argument("--max-memory", type=int, default=None, metavar="MB",
                   help="memory budget in MB; generations that would pass it wait their turn "
                        "(default: max_memory_mb in docs/settings.md)")
    s.add_argument("--reprobe", action="store_true",
                   help="measure the fastest weight layouts on this machine again "
                        "(they are stored after the first)")
    precision_option(s)
    s.set_defaults(func=inference.cmd_serve)

    s = sub.add_parser("models", help="list the available models and where each comes from")
    common(s, model=False)
    s.set_defaults(func=inference.cmd_models)

    s = sub.add_parser("tokenize", help="split text into tokens, with ids and character offsets")
    s.add_argument("text")
    common(s)
    s.set_defaults(func=inference.cmd_tokenize)

    s = sub.add_parser("generate", help="continue a prompt token by token")
    s.add_argument("prompt")
    s.add_argument("--max-new-tokens", type=int, default=limits.NEW_TOKENS,
                   help="stop after this many new tokens (default %(default)s)")
    s.add_argument("--temperature", type=finite, default=limits.TEMPERATURE,
                   help=f"0 = greedy; higher = more random, up to {limits.MAX_TEMPERATURE:g} "
                        "(default %(default)s)")
    s.add_argument("--top-k", type=int, default=0, help="keep only the k most likely tokens (0 = off)")
    s.add_argument("--top-p", type=finite, default=1.0, help="nucleus sampling threshold in (0, 1] (1 = off)")
    s.add_argument("--min-p", type=finite, default=0.0,
                   help="drop tokens below min-p x the top probability (0 = off)")
    s.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same text")
    s.add_argument("--top", type=int, default=5, help="alternatives to report per step in --json (default 5)")
    precision_option(s)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--chat", dest="chat", action="store_true", default=True,
                   help="wrap the prompt in the chat template (default)")
    g.add_argument("--raw", dest="chat", action="store_false", help="feed the prompt as it is")
    common(s)
    s.set_defaults(func=inference.cmd_generate)

    s = sub.add_parser("attention", help="show which earlier tokens each token attends to")
    s.add_argument("text")
    s.add_argument("--layer", type=int, default=None, help="one layer (default: all, averaged in the table)")
    s.add_argument("--head", type=int, default=None, help="one head (default: all, averaged in the table)")
    s.add_argument("--no-limit", action="store_true", help="allow sentences longer than the page's limit")
    common(s)
    s.set_defaults(func=inference.cmd_attention)

    backprop.register(sub)
    curriculum.register(sub)
    align.register(sub)
    sequences.register(sub)
    experiments.register(sub)
    what_if.register(sub)
    inside.register(sub)
    makes_up.register(sub)
    record.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()  # decoding frees and remakes vocabulary-sized tensors each step (engine/allocator.py)
    try:
        args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`... | head`): stop quietly, and keep Python from complaining
        # again when it flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
