"""Fine-tuning: turn the Shakespeare base model into a (very small) assistant.

The data is this project's own set of conversations (data/finetune.jsonl): questions about
the plays, a little manners and format, and refusals of clearly harmful requests. Each
conversation becomes one token sequence in a chat format with control tokens:

    <|user|>Who is Hamlet's mother?<|assistant|>Gertrude, the Queen of Denmark.<|end|>
    ........ not trained on ..................  ^^^^^^^^ trained on ^^^^^^^^^^^^^^^^^^^

The loss is masked to the assistant's tokens (and the end marker, so the model learns to
stop): the model is not taught to write questions, only to answer them. `loss_mask` returns
that mask so the page can show it. The masked loss itself (loop.answer_loss) is the same one
the LoRA lesson uses, and the loop is the one every trainer here shares (loop.train_loop).
The shipped chat model is the recipe shakespeare-chat (recipes.py): 600 steps, not the 150 the
page's quick run defaults to.

Then base vs tuned, side by side: both models' answers to the same prompt, and the
next-token distribution at the first answer position before and after.

References: Ouyang et al. 2022 "Training language models to follow instructions" (InstructGPT:
supervised fine-tuning on demonstrations); the loss-masking of Alpaca-style SFT scripts;
Karpathy's nanochat (chat special tokens and masks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import torch

from prediction_machine.config import TrainSettings
from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.inference.tokenizer import Tokenizer
from prediction_machine.model import weights
from prediction_machine.model.models import build_transformer
from prediction_machine.model.transformer import Transformer
from prediction_machine.training.curriculum.checkpoint import save_run
from prediction_machine.training.curriculum.loop import (
    Event,
    Step,
    answer_loss,
    done_event,
    lr_schedule,
    make_optimizer,
    new_record,
    pad_rows,
    train_loop,
)
from prediction_machine.training.curriculum.runs import runs_dir

# The chat template (jinja2), stored with the fine-tuned checkpoint so `generate --model` and
# models.LanguageModel.prompt_ids wrap a prompt the way training did.
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'user' %}<|user|>{{ m.content }}"
    "{% elif m.role == 'assistant' %}<|assistant|>{{ m.content }}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@dataclass(frozen=True)
class FinetuneConfig(TrainSettings):
    steps: int = 150  # optimizer steps: the page's quick run (the shipped model's recipe has 600)
    batch_size: int = 16  # conversations per step
    lr: float = 1e-3  # peak learning rate: lower than pre-training, the model already knows English
    eval_every: int = 25  # loss on the held-out questions every N steps
    checkpoint_every: int = 50
    sample_every: int = 25
    sample_question: str = "Who is Hamlet's mother?"
    seed: int = 7


@dataclass(frozen=True)
class Example:
    id: int
    kind: str  # "plays", "manners" or "refusal"
    split: str  # "train" or "eval"
    user: str
    assistant: str


# ----------------------------------------------------------------------------- data


def dataset_path() -> Path:
    return Path(str(files("prediction_machine") / "data" / "finetune.jsonl"))


@lru_cache(maxsize=1)
def load_examples() -> tuple[Example, ...]:
    lines = dataset_path().read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return tuple(Example(**r) for r in rows)


def split(name: str) -> list[Example]:
    return [e for e in load_examples() if e.split == name]


def encode(tok: Tokenizer, ex: Example) -> tuple[list[int], list[int]]:
    """Token ids of one conversation, and a 0/1 mask: 1 where the token is the assistant's.

    Example (ids shortened): <|user|> Who ... ? <|assistant|> Gert rude . <|end|>
                       mask:     0     0  0  0       0          1    1   1    1
    """
    user = plain_chat_ids(tok, ex.user)
    answer = tok.encode_ids(ex.assistant) + [tok.special_id("<|end|>")]
    return user + answer, [0] * len(user) + [1] * len(answer)


def loss_mask(tok: Tokenizer, ex: Example) -> list[dict]:
    """Each token of a conversation with whether the loss counts it: what the page shows."""
    ids, mask = encode(tok, ex)
    return [{**tok.token(i).to_dict(), "trained": bool(m)} for i, m in zip(ids, mask, strict=True)]


def batch(tok: Tokenizer, examples: list[Example], context: int
          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded inputs, targets and target mask, (B, T) each (loop.pad_rows): what answer_loss takes."""
    return pad_rows([encode(tok, e) for e in examples], context)


@torch.no_grad()
def eval_loss(model: Transformer, tok: Tokenizer, examples: list[Example] | None = None) -> float:
    """Answer-only loss on the held-out conversations (all of them, one batch)."""
    x, y, m = batch(tok, examples or split("eval"), model.cfg.max_seq_len)
    return answer_loss(model, x, y, m).item()


# ----------------------------------------------------------------------------- answering


def plain_chat_ids(tok: Tokenizer, question: str) -> list[int]:
    """A question in the training format, ready for the answer: <|user|>question<|assistant|>.

    Written out by hand, the way training builds it; model/chat.chat_ids instead renders a
    checkpoint's own (jinja) chat template, which for our checkpoints gives the same ids.
    """
    return [tok.special_id("<|user|>")] + tok.encode_ids(question) + [tok.special_id("<|assistant|>")]


def question_fits(tok: Tokenizer, question: str, max_seq_len: int) -> str | None:
    """None if the chat-wrapped question fits the model's context; otherwise what is wrong, in words.

    A question must leave room for at least one answer token, because the model reads the whole
    prompt before it predicts the first one.
    """
    n = len(plain_chat_ids(tok, question))
    if n < max_seq_len:
        return None
    return (f"is {n} tokens with the chat markers; these models read at most {max_seq_len}, "
            f"so it must be under {max_seq_len} to leave room for an answer")


def answer(model: Transformer, tok: Tokenizer, question: str, max_new_tokens: int = 48) -> str:
    """Greedy answer, stopping at the end marker (or the token budget)."""
    ids = plain_chat_ids(tok, question)[-(model.cfg.max_seq_len - max_new_tokens) :]
    end = tok.special_id("<|end|>")
    greedy = SamplingParams(temperature=0.0)
    out = [s.id for s in generate(model, ids, greedy, max_new_tokens, {end}, top_n=1)]
    stopped = bool(out) and out[-1] == end
    return tok.decode([i for i in out if i != end]) + ("" if stopped else " …")


def data_summary(tok: Tokenizer | None, shown: int = 12) -> dict:
    """The fine-tuning set at a glance: counts per kind and split, held-out examples, one loss mask."""
    examples = load_examples()
    kinds: dict[str, dict[str, int]] = {}
    for e in examples:
        kinds.setdefault(e.kind, {"train": 0, "eval": 0})[e.split] += 1
    mask = loss_mask(tok, next(e for e in examples if e.kind == "plays")) if tok is not None else None
    held = [e for e in examples if e.split == "eval"][:shown]
    return {"count": len(examples), "kinds": kinds, "mask": mask,
            "examples": [{"kind": e.kind, "split": e.split, "user": e.user, "assistant": e.assistant}
                         for e in held]}


@torch.no_grad()
def compare(base: Transformer, tuned: Transformer, tok: Tokenizer, question: str, k: int = 10) -> dict:
    """Both answers, and where each model puts its probability for the first answer token."""
    ids = plain_chat_ids(tok, question)
    out = {"question": question, "prompt_tokens": [tok.token(i).to_dict() for i in ids]}
    probs = {}
    for name, model in (("base", base), ("tuned", tuned)):
        logits, _ = model(torch.tensor([ids]), last_only=True)  # (1, 1, V)
        probs[name] = logits[0, -1].softmax(-1)  # (V,)
        out[name] = {"answer": answer(model, tok, question)}
    for name in ("base", "tuned"):
        other = "tuned" if name == "base" else "base"
        top = probs[name].topk(k)
        out[name]["top"] = [
            {"token": tok.token(i).to_dict(), "prob": p, "other_prob": probs[other][i].item()}
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
    # How much probability moved: half the L1 distance between the two distributions (0 = same, 1 = disjoint).
    out["moved"] = 0.5 * (probs["base"] - probs["tuned"]).abs().sum().item()
    return out


def load_trainable(folder: Path) -> tuple[Transformer, Tokenizer, dict]:
    """A checkpoint as a fresh, trainable model (models.load gives frozen, shared ones)."""
    ckpt = weights.read_own_folder(folder)
    model = build_transformer(ckpt).train().requires_grad_(True)
    meta = json.loads((Path(folder) / "prediction-machine.json").read_text())
    return model, Tokenizer(ckpt.tokenizer_json), meta


def base_label(base_folder: Path) -> str:
    """How a fine-tuned run names the model it started from: the shipped base or the learner's own run
    by its name (its run id), an outside folder by its path. A name keeps this machine's paths out of
    the checkpoint, and GET /api/curriculum/runs lists the run under that same id.
    """
    base_folder = Path(base_folder).resolve()
    if base_folder == Path(str(files("prediction_machine") / "data" / "shakespeare-base")).resolve():
        return "shakespeare-base"
    if base_folder.parent == runs_dir().resolve():
        return base_folder.name
    return str(base_folder)


# ----------------------------------------------------------------------------- the loop


def finetune(
    cfg: FinetuneConfig,
    base_folder: Path,
    folder: Path,
    should_stop: Callable[[], bool] | None = None,
    should_pause: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Supervised fine-tuning of a base checkpoint on the project's conversations, yielding events."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model, tok, base_meta = load_trainable(Path(base_folder))
    base_name = base_label(Path(base_folder))
    train, held = split("train"), split("eval")
    ctx = model.cfg.max_seq_len
    opt = make_optimizer(model, cfg)
    params = sum(p.numel() for p in model.parameters())
    example = next(e for e in train if e.kind == "plays")
    train_tokens = sum(sum(encode(tok, e)[1]) for e in train)
    base_eval = eval_loss(model, tok, held)
    record = new_record("finetune", cfg, params, base=base_name,
                        data={"train": len(train), "eval": len(held), "answer_tokens": train_tokens})
    record["history"]["eval"].append({"step": 0, "eval_loss": base_eval})
    yield "start", {
        "folder": str(folder), "config": cfg.to_dict(), "model": model.cfg.to_dict(), "parameters": params,
        "data": record["data"], "mask_example": loss_mask(tok, example), "base_eval_loss": base_eval,
        "base_training": base_meta.get("training"),
        "lr_schedule": lr_schedule(cfg),
    }
    yield "eval", {"step": 0, "eval_loss": base_eval}
    extra = {"chat_template": CHAT_TEMPLATE, "base": base_name}

    def step_fn(seed: int) -> Step:
        g = torch.Generator().manual_seed(seed)
        picks = torch.randint(0, len(train), (cfg.batch_size,), generator=g).tolist()
        x, y, m = batch(tok, [train[i] for i in picks], ctx)  # (B, T) each
        return Step(answer_loss(model, x, y, m), int(m.sum()))  # the answers' tokens: what the loss counts

    def sample() -> dict:
        return {"prompt": cfg.sample_question, "text": answer(model, tok, cfg.sample_question)}

    def save(status: str) -> Event:
        record["status"] = status
        save_run(folder, model, tok, opt, record, extra)
        return "checkpoint", {"step": record["step"], "folder": str(folder), "status": status}

    def evaluate() -> dict:
        return {"eval_loss": eval_loss(model, tok, held)}

    yield from train_loop(cfg, model, opt, record, step_fn, evaluate,
                          sample, save, should_stop, should_pause)
    yield "done", done_event(record, folder, base_eval_loss=base_eval)
