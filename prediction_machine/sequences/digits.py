"""Draw a digit pixel by pixel: the text model's generation loop, run on pixels.

The prompt is a request token ("draw a 3", or "any digit") and, if the learner painted some
rows, those pixels. `generate` (inference/generation.py) then predicts the next pixel's 17
grey levels, samples one (inference/sampling.py), appends it and repeats until the 8 x 8 grid
is full. Only the tokenizer (pixel_tokens.py) is new.

The classifier (classifier.py), trained on real digits, then says what the drawing looks like.
"""

from __future__ import annotations

import random
from functools import lru_cache

import torch
from safetensors.torch import load_file

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.transformer import Transformer
from prediction_machine.sequences import baselines, classifier, data, shipped
from prediction_machine.sequences import pixel_tokens as pt
from prediction_machine.sequences.nll import mean_nll
from prediction_machine.training.backprop.png import png_bytes

VOCAB = pt.VOCAB
CONTEXT = pt.SEQ_LEN
ANY_SHARE = 0.2  # in training, a fifth of the images are asked for as "any digit"


# ----------------------------------------------------------------------------- training data


def describe_data() -> dict:
    d = data.digits()
    return {"name": "scikit-learn handwritten digits", "images": len(d.images), "train": len(d.train),
            "held_out": len(d.held_out), "tokens_per_image": pt.SEQ_LEN}


def training_rows(batch: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """`batch` training images as (ids, loss mask); the request is the label, or "any" now and then."""
    d, rng = data.digits(), random.Random(seed)
    rows = []
    for i in rng.choices(d.train, k=batch):
        digit = None if rng.random() < ANY_SHARE else d.labels[i]
        ids = pt.encode(d.images[i], digit)
        rows.append((ids, [0] + [1] * pt.PIXELS))  # every pixel is predicted; the request is given
    return rows


def held_out_rows(any_digit: bool = False) -> list[tuple[list[int], list[int]]]:
    d = data.digits()
    return [(pt.encode(d.images[i], None if any_digit else d.labels[i]), [0] + [1] * pt.PIXELS)
            for i in d.held_out]


def sample_images(model: Transformer, digits: list[int | None], seed: int, temperature: float = 1.0
                  ) -> list[list[int]]:
    params = SamplingParams(temperature=temperature)
    out = []
    for j, digit in enumerate(digits):
        prompt = [pt.request(digit)]
        steps = generate(model, prompt, params, pt.PIXELS, seed=seed * 1000 + j, top_n=1)
        out.append(pt.decode(prompt + [s.id for s in steps]))  # with the request, so decode drops just that
    return out


def extra_tensors() -> dict:
    """Saved beside the model: the judge, trained on the real training digits (about a second)."""
    d = data.digits()
    net = classifier.fit([d.images[i] for i in d.train], [d.labels[i] for i in d.train])
    return {"classifier": classifier.state(net)}


def training_sample(model: Transformer, seed: int) -> dict:
    """One drawing of each digit 0..9, for the live training figure."""
    return {"images": sample_images(model, list(range(10)), seed)}


# ----------------------------------------------------------------------------- the figure


@lru_cache(maxsize=1)
def judge():
    return classifier.from_state(load_file(str(shipped.shipped("digits") / "classifier.safetensors")))


def classify(pixels: list[int]) -> dict:
    """What the classifier sees in one 8 x 8 image: its best guess, how sure, and all ten."""
    if len(pixels) != pt.PIXELS or any(not 0 <= p < pt.LEVELS for p in pixels):
        raise ValueError(f"an image is {pt.PIXELS} grey levels, each 0..{pt.LEVELS - 1}")
    probs = classifier.probabilities(judge(), [pixels])[0]  # (10,)
    return {"guess": int(probs.argmax()), "confidence": float(probs.max()),
            "probs": [float(p) for p in probs]}


def draw(digit: int | None, prefix: list[int], params: SamplingParams, seed: int | None,
         model: Transformer | None = None) -> dict:
    """Fill the grid after `prefix` (pixels the learner painted), one generation step per pixel.

    Each step carries the 17-way distribution over grey levels the draw used, the uniform
    number u and where it landed, so the page can show every choice.
    """
    if len(prefix) >= pt.PIXELS:
        raise ValueError(f"prefix has {len(prefix)} pixels; "
                         f"leave at least one of the {pt.PIXELS} for the model")
    model = model or shipped.load("digits")
    prompt = pt.encode(list(prefix), digit)
    steps = []
    for s in generate(model, prompt, params, pt.PIXELS - len(prefix), seed=seed, top_n=pt.VOCAB):
        probs = [0.0] * pt.LEVELS
        raw = [0.0] * pt.LEVELS
        for row in s.prediction.rows:
            if pt.is_level(row.id):
                probs[row.id], raw[row.id] = row.prob, row.raw_prob
        level = s.id if pt.is_level(s.id) else 0  # a request token drawn here (rare) is blank paper
        steps.append({"pixel": len(prefix) + s.index, "level": level, "token": s.id,
                      "other": max(0.0, 1 - sum(probs)),
                      "prob": s.prob, "u": s.draw.u, "cumulative_before": s.draw.cumulative_before,
                      "probs": probs, "raw_probs": raw, "entropy": s.prediction.entropy, "ms": s.ms})
    pixels = list(prefix) + [st["level"] for st in steps]
    return {"digit": digit, "request": pt.label(pt.request(digit)), "prefix": len(prefix), "steps": steps,
            "pixels": pixels, "classifier": classify(pixels)}


# ----------------------------------------------------------------------------- the measurements


@torch.no_grad()
def nll_report(model: Transformer | None = None) -> dict:
    """Held-out NLL per pixel (nats) of the model, beside the two counting baselines."""
    model = model or shipped.load("digits")
    d = data.digits()
    train = [d.images[i] for i in d.train]
    test = [d.images[i] for i in d.held_out]
    return {
        "model_nll": mean_nll(model, held_out_rows()),
        "model_nll_any": mean_nll(model, held_out_rows(any_digit=True)),
        "pixel_frequency_nll": baselines.positional_nll(train, test, pt.LEVELS),
        "bigram_nll": baselines.bigram_nll(train, test, pt.LEVELS),
        "held_out_images": len(test),
    }


def recognition_table(per_digit: int, seed: int = 0, temperature: float = 1.0,
                      model: Transformer | None = None) -> dict:
    """Ask for each digit `per_digit` times; how often does the classifier see the digit asked for?"""
    model = model or shipped.load("digits")
    d = data.digits()
    rows, hits_all = [], 0
    for digit in range(10):
        images = sample_images(model, [digit] * per_digit, seed * 100 + digit, temperature)
        guesses = classifier.probabilities(judge(), images).argmax(-1)  # (per_digit,)
        hits = int((guesses == digit).sum())
        hits_all += hits
        rows.append({"digit": digit, "samples": per_digit, "recognized": hits, "share": hits / per_digit})
    return {"per_digit": rows, "share": hits_all / (10 * per_digit), "temperature": temperature,
            "samples": 10 * per_digit,
            "classifier_held_out_accuracy": classifier.accuracy(judge(), [d.images[i] for i in d.held_out],
                                                                [d.labels[i] for i in d.held_out])}


def png(pixels: list[int], scale: int = 32) -> bytes:
    """The drawing as a PNG: ink on paper, each pixel a scale x scale square."""
    paper, ink = (0xFD, 0xFC, 0xF9), (0x1D, 0x1D, 0x1F)
    shade = [tuple(round(a + (b - a) * level / (pt.LEVELS - 1)) for a, b in zip(paper, ink, strict=True))
             for level in range(pt.LEVELS)]
    rows = [[shade[pixels[(y // scale) * pt.SIDE + x // scale]] for x in range(pt.SIDE * scale)]
            for y in range(pt.SIDE * scale)]
    return png_bytes(rows)
