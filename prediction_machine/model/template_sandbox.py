"""The sandbox a chat template renders in: jinja2's, plus a size check before every step that could
build something huge.

jinja2's sandbox keeps a template away from Python's internals, but a template may still ask for
`'x'|center(10**9)` or `'{:999999999}'.format(1)`: one call, one gigabyte, and no line of the
template runs in between, so a check on the output or on time (chat.render) comes too late. Here
each such step is measured before it runs, and refused when its result would pass RENDER_CHARS:

- every filter and every method call: no whole-number argument (a width, a count, a fill) above
  RENDER_CHARS, and `replace`, `join` and `indent` by the size of what they would return;
- `str.format` and the `format` filter: no width of 10,000 or more in a format field;
- the operators `*`, `+`, `%`, `**` and `~` (joining texts): by the size of their result;
- `lipsum`, a generator of filler text, is not offered (no chat template needs it).
"""

from __future__ import annotations

import functools
import re

from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter

from prediction_machine.model.weights import WeightsError

RENDER_CHARS = 1_000_000  # far beyond any conversation the limits allow
_WIDE = re.compile(r"\d{5,}")  # a width of 10,000 or more in a %- or {}-format


class TemplateError(WeightsError):
    """A chat template that does not parse, or that renders past its bounds; the message is one line."""


def _refuse(what: str) -> None:
    raise TemplateError(f"the chat template {what} (more than {RENDER_CHARS:,} characters)")


def _check_numbers(args, kwargs) -> None:
    """No width or count argument may ask for more than RENDER_CHARS of anything."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > RENDER_CHARS:
            _refuse(f"passes {a:,} as a width or count")


def _replaced_size(s: str, old, new) -> int:
    if not isinstance(old, str) or not isinstance(new, str):
        return len(s)
    times = s.count(old) if old else len(s) + 1  # counting allocates nothing
    return len(s) + times * (len(new) - len(old))


def _joined_size(sep, items) -> int:
    return len(str(sep)) * max(0, len(items) - 1) if hasattr(items, "__len__") else 0


def _indented_size(s, width) -> int:
    w = width if isinstance(width, int) else len(str(width))
    return len(str(s)) + (str(s).count("\n") + 1) * w


def _check_filter(name: str, value, args, kwargs) -> None:
    _check_numbers(args, kwargs)
    if name == "replace" and len(args) >= 2 and isinstance(value, str):
        size = _replaced_size(value, args[0], args[1])
    elif name == "join":
        size = _joined_size(args[0] if args else kwargs.get("d", ""), value)
    elif name == "indent":
        size = _indented_size(value, args[0] if args else kwargs.get("width", 4))
    elif name == "format" and isinstance(value, str) and _WIDE.search(value):
        raise TemplateError("the chat template formats with a width of 10,000 or more")
    else:
        return
    if size > RENDER_CHARS:
        _refuse(f"would make a text of {size:,} characters with `{name}`")


def _bounded_filter(name: str, fn):
    # Filters marked pass_context / pass_eval_context / pass_environment get that object first.
    skip = 2 if getattr(fn, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(fn)  # keeps jinja_pass_arg
    def bounded(*args, **kwargs):
        value = args[skip - 1] if len(args) >= skip else None
        _check_filter(name, value, args[skip:], kwargs)
        return fn(*args, **kwargs)

    return bounded


def _check_field(spec: str) -> None:
    if _WIDE.search(spec):
        raise TemplateError("the chat template formats with a width of 10,000 or more")


class _Formatter(SandboxedFormatter):
    def format_field(self, value, format_spec):
        _check_field(format_spec)  # the field's width as it will be used, nested fields filled in
        return super().format_field(value, format_spec)


class _EscapeFormatter(SandboxedEscapeFormatter):
    def format_field(self, value, format_spec):
        _check_field(format_spec)
        return super().format_field(value, format_spec)


class _Generator(CodeGenerator):
    """Compiles `a ~ b` to a call of the environment's `joined`, which measures before it joins."""

    def visit_Concat(self, node, frame):
        self.write("environment.joined((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox, with every step that could build something huge measured first."""

    intercepted_binops = frozenset(["*", "%", "**", "+"])
    code_generator_class = _Generator

    def __init__(self, **options):
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.filters = {name: _bounded_filter(name, fn) for name, fn in self.filters.items()}

    def call_binop(self, context, operator, left, right):
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > RENDER_CHARS:
                    raise TemplateError(f"the chat template repeats a text {n:,} times")
        if operator == "+" and all(isinstance(x, (str, list, tuple)) for x in (left, right)):
            if len(left) + len(right) > RENDER_CHARS:
                _refuse("adds two things into one too large")
        if operator == "%" and isinstance(left, str):
            if _WIDE.search(left):
                raise TemplateError("the chat template formats with a width of 10,000 or more")
            _check_numbers(right if isinstance(right, tuple) else (right,), {})  # '%*d': a width given
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise TemplateError(f"the chat template raises a number to the power {right}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's own signature
        _check_numbers(args, kwargs)
        owner = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str) and name in ("replace", "join", "expandtabs"):
            if name == "replace" and len(args) >= 2:
                size = _replaced_size(owner, args[0], args[1])
            elif name == "join" and args:
                size = _joined_size(owner, args[0])
            else:
                size = len(owner) * (args[0] if args and isinstance(args[0], int) else 8)
            if size > RENDER_CHARS:
                _refuse(f"would make a text of {size:,} characters with `{name}`")
        return super().call(__context, __obj, *args, **kwargs)

    def joined(self, parts) -> str:
        texts = [str(p) for p in parts]
        if sum(map(len, texts)) > RENDER_CHARS:
            _refuse("joins texts into one too long")
        return "".join(texts)

    def wrap_str_format(self, value):
        """`str.format` as jinja2 sandboxes it, with each field's width checked before it is filled."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text, is_map = value.__self__, value.__name__ == "format_map"
        formatter = (_EscapeFormatter(self, escape=text.escape) if hasattr(text, "__html__")
                     else _Formatter(self))

        @functools.wraps(value)
        def bounded(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                args, kwargs = (), args[0]
            return type(text)(formatter.vformat(text, args, kwargs))

        return bounded
