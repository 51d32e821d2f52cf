"""The README's Python API snippet runs exactly as written."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_python_api_snippet_runs_as_written(lm):  # lm: the session's model, so pm.load() is cached
    section = README.read_text().split("## The Python API", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) > lm.config.n_layers  # one line per layer of the logit lens, then the tokens
    assert "Paris" in "\n".join(lines[lm.config.n_layers:])  # the greedy answer, token by token
