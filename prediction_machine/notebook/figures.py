"""The page's figures in a notebook: each call computes one figure's numbers and returns a `Figure`.

    import prediction_machine as pm
    from prediction_machine import notebook as nb

    lm = pm.load()
    nb.trace(lm, "What is the capital of France?")          # tokens and the embedding projection
    nb.logit_lens(lm, "What is the capital of France?")     # each layer's best guess
    nb.prediction(lm, "Once upon a", pm.SamplingParams(temperature=0.8), seed=1)   # table + draw
    nb.generation(lm, "Name three colours.", max_new_tokens=12)                    # the timeline
    nb.attention(lm, "The animal didn't cross the street because it was too tired.")
    nb.ablation(lm, "The capital of France is", "head", layer=3, head=5, raw=True)  # before and after

A `Figure` shows itself as HTML in JupyterLab and VS Code (`_repr_html_`, drawn by the page's own JS),
and as a plain-text table anywhere else (`repr`). `figure.data` holds the numbers, in the page's JSON.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import prediction_machine.notebook.answers as answers
import prediction_machine.notebook.bundle as bundle
import prediction_machine.notebook.text as text
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.limits import NEW_TOKENS
from prediction_machine.model.models import LanguageModel

# A question the output does not hold (another sentence, the score breakdown): the figure shows this.
REFUSAL = ("This notebook output holds only the numbers computed for it; "
           "call the function again in the kernel.")


@dataclass
class Figure:
    kind: str  # which figure: trace, lens, prediction, generation, attention, ablation
    section: str  # the page section whose stylesheet rules it follows: inference, attention, experiments
    data: dict  # the numbers, in the JSON shapes of the page's API
    answers: dict  # API questions the figure asks itself, with their answers ({"POST /api/x": [...]})
    hash: str = ""  # the page's shared-link state the figure starts from (#attention?sentence=...)

    def __repr__(self) -> str:
        return text.describe(self.kind, self.data)

    def _repr_html_(self) -> str:
        """One self-contained output: a text fallback, then the page's JS and CSS, inline."""
        ident = f"pm-{uuid.uuid4().hex[:12]}"
        # A figure that asks the page's API questions reads its numbers from the answers, sent once.
        data = None if self.answers else self.data
        payload = {"kind": self.kind, "section": self.section, "data": data, "answers": self.answers,
                   "hash": self.hash, "words": bundle.words(), "refusal": REFUSAL}
        outer = f"document.getElementById({_js(ident)})"
        # One async function: no import statement and no top-level await, so the script also runs where
        # a notebook front end re-creates it as a classic script.
        script = (f"(async () => {{\nconst payload = {_js(payload)};\n{bundle.script()}"
                  f'modules["host.js"].show({outer}, payload, {_js(bundle.css())});\n}})();')
        # "</script" anywhere inside (a comment, a string) would end the script early; "<\/" means the same.
        script = re.sub(r"</(script)", r"<\\/\1", script, flags=re.IGNORECASE)
        return (f'<div id="{ident}" class="prediction-machine-figure" data-kind="{self.kind}">'
                f"<pre>{html.escape(repr(self))}</pre></div>\n"
                f'<script type="module">\n{script}\n</script>')


def _js(value) -> str:
    """A value as a JS literal that cannot end the <script> it sits in."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\!--")


# ----------------------------------------------------------------------------- the figures


def _only(answer: dict, *keys: str) -> dict:
    """The parts of an answer a figure draws: every output carries its numbers, so none it does not need."""
    return {k: answer[k] for k in keys}


def trace(lm: LanguageModel, prompt: str, chat: bool = True) -> Figure:
    """Stages 1 and 2: the prompt's tokens, then each token's vector and its place among its neighbours."""
    data = {"tokenize": answers.tokenize(lm, prompt, chat),
            "trace": _only(answers.trace(lm, prompt, chat), "model", "tokens", "ms", "embedding")}
    return Figure("trace", "inference", data, {})


def logit_lens(lm: LanguageModel, prompt: str, chat: bool = True, target: int | None = None) -> Figure:
    """Stage 3: what the model would predict if it stopped after each layer; `target` is followed too."""
    trace = _only(answers.trace(lm, prompt, chat, target=target), "model", "tokens", "ms", "transformer")
    return Figure("lens", "inference", {"trace": trace, "target": target}, {})


def prediction(lm: LanguageModel, prompt: str, params: SamplingParams | None = None, seed: int | None = 0,
               chat: bool = True, k: int = 10) -> Figure:
    """Stages 4 and 5: the next-token table, then the same table under `params` and one seeded draw."""
    params = params or SamplingParams()
    # One answer serves both tables: its rows carry the model's own probability (stage 4) and the one
    # after the settings (stage 5).
    data = {"preview": answers.preview(lm, prompt, chat, params, seed, k), "vocab_size": lm.config.vocab_size,
            "settings": {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
                         "min_p": params.min_p}}
    return Figure("prediction", "inference", data, {})


def generation(lm: LanguageModel, prompt: str, params: SamplingParams | None = None,
               max_new_tokens: int = NEW_TOKENS, seed: int | None = 0, chat: bool = True,
               top_n: int = 10) -> Figure:
    """Stage 6: the loop, one token at a time; choose a step on the timeline to see its table and draw."""
    params = params or SamplingParams()
    return Figure("generation", "inference",
                  answers.generation(lm, prompt, chat, params, max_new_tokens, seed, top_n), {})


def attention(lm: LanguageModel, text: str, layer: int | None = None, head: int | None = None) -> Figure:
    """The attention explorer: hover a word to see what it reads; choose a layer and a head (or averages)."""
    data = answers.attention(lm, text)
    asked = {"GET /api/attention/examples": [{"when": {}, "body": answers.attention_examples(lm, text)}],
             "POST /api/attention": [{"when": {"text": text, "breakdown": None, "layers": None},
                                      "body": data}]}
    state = {"sentence": text, "layer": layer, "head": head}
    query = "&".join(f"{k}={quote(str(v), safe='')}" for k, v in state.items() if v is not None)
    return Figure("attention", "attention", data, asked, hash=f"#attention?{query}")


def ablation(lm: LanguageModel, prompt: str, kind: str = "head", layer: int = 0, head: int | None = 0,
             raw: bool = False) -> Figure:
    """An experiment, before and after: switch one part off ("head", "layer_attn" or "mlp") and compare
    the next-token probabilities. `raw` feeds the prompt as it is, without the chat template."""
    head = head if kind == "head" else None
    return Figure("ablation", "experiments", answers.ablation(lm, prompt, kind, layer, head, raw), {})
