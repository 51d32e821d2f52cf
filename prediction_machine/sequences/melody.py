"""Compose a tune note by note: the text model's generation loop, run on notes.

The prompt is the start token and any notes the learner entered. `generate`
(inference/generation.py) predicts the next token (a pitch, then its length, then the next
pitch ...), samples it (inference/sampling.py), appends it and repeats until the end token or
the note limit. Only the tokenizer (note_tokens.py) is new.

The data: the top line of each Bach chorale in music21's corpus, moved to no sharps or flats
(C major, or A minor), so the model does not have to learn the same tune in twelve keys
from only a few hundred examples. "In the key" below means on the white keys.
"""

from __future__ import annotations

import random
import statistics

from prediction_machine.inference.generation import generate
from prediction_machine.inference.sampling import SamplingParams
from prediction_machine.model.transformer import Transformer
from prediction_machine.sequences import baselines, data, shipped
from prediction_machine.sequences import note_tokens as nt
from prediction_machine.sequences.nll import token_nll

VOCAB = nt.VOCAB
CONTEXT = 256
MAX_NOTES = (CONTEXT - 2) // 2  # a tune's start, its notes and its end fit in the context
WHITE_KEYS = {0, 2, 4, 5, 7, 9, 11}  # the pitch classes of C major (and A minor)


def usable(tune: list[data.Note]) -> bool:
    return len(tune) <= MAX_NOTES and all(nt.LOW <= n.pitch <= nt.HIGH for n in tune)


def tunes(split: str) -> list[list[data.Note]]:
    c = data.chorales()
    return [c.tunes[i] for i in (c.train if split == "train" else c.held_out) if usable(c.tunes[i])]


def describe_data() -> dict:
    c = data.chorales()
    return {"name": "Bach chorales (music21 corpus), top line", "scores": len(c.tunes),
            "train": len(tunes("train")), "held_out": len(tunes("held_out")),
            "left_out": len(c.tunes) - len(tunes("train")) - len(tunes("held_out")),
            "notes": sum(len(t) for t in tunes("train"))}


def _row(tune: list[data.Note]) -> tuple[list[int], list[int]]:
    ids = nt.encode([(n.pitch, n.quarters) for n in tune])
    return ids, [0] + [1] * (len(ids) - 1)


def training_rows(batch: int, seed: int) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [_row(t) for t in rng.choices(tunes("train"), k=batch)]


def held_out_rows() -> list[tuple[list[int], list[int]]]:
    return [_row(t) for t in tunes("held_out")]


def sample_tune(model: Transformer, prompt: list[tuple[int, float]], params: SamplingParams, seed: int | None,
                max_notes: int) -> list[tuple[int, float]]:
    ids = nt.encode(prompt, end=False)
    new = [s.id for s in generate(model, ids, params, 2 * max_notes + 1, stop_ids={nt.END}, seed=seed,
                                  top_n=1)]
    return nt.decode(ids + new)


def extra_tensors() -> dict:
    return {}


def training_sample(model: Transformer, seed: int) -> dict:
    notes = sample_tune(model, [], SamplingParams(temperature=1.0), seed, 24)
    return {"notes": notes, "names": [nt.note_name(p) for p, _ in notes]}


# ----------------------------------------------------------------------------- the figure


def parse_notes(text: str) -> list[tuple[int, float]]:
    """Typed notes, 'C4 D4:0.5 E4:2' -> [(60, 1.0), (62, 0.5), (64, 2.0)]; a bare name lasts 1 beat."""
    notes = []
    for word in text.replace(",", " ").split():
        name, _, beats = word.partition(":")
        if beats and nt.BEATS.fullmatch(beats) is None:  # ASCII digits, as in the octave (float takes more)
            raise ValueError(f"{word!r}: a length is a number of beats between 0 and 8, like 2, 1.5 or .5")
        q = float(beats) if beats else 1.0
        if not 0 < q <= 8:
            raise ValueError(f"{word!r}: a length is a number of beats between 0 and 8")
        notes.append((nt.parse_name(name), q))
    return notes


def compose(prompt: list[tuple[int, float]], params: SamplingParams, seed: int | None, max_notes: int,
            model: Transformer | None = None) -> dict:
    """Continue the prompt's notes, one token per step: each pitch, then its length, until the end token."""
    if len(prompt) >= MAX_NOTES:  # the start leaves room for one new note at least
        raise ValueError(f"the start has {len(prompt)} notes; it may have at most {MAX_NOTES - 1} notes "
                         f"(the model holds {MAX_NOTES} notes in all, one of them new)")
    max_notes = min(max_notes, MAX_NOTES - len(prompt))
    model = model or shipped.load("melody")
    ids = nt.encode(prompt, end=False)
    steps = []
    for s in generate(model, ids, params, 2 * max_notes + 1, stop_ids={nt.END}, seed=seed, top_n=nt.VOCAB):
        kind = ("pitch" if nt.is_pitch(s.id) else "end" if s.id == nt.END
                else "length" if nt.is_length(s.id) else "start")
        rows = [{"token": r.id, "label": nt.label(r.id), "prob": r.prob, "raw_prob": r.raw_prob}
                for r in s.prediction.rows if r.prob > 0 or r.raw_prob > 1e-3]
        value = nt.decode([s.id, nt.FIRST_LENGTH])[0][0] if kind == "pitch" else \
            nt.LENGTHS[s.id - nt.FIRST_LENGTH] if kind == "length" else None  # the MIDI pitch, or the beats
        steps.append({"index": s.index, "token": s.id, "label": nt.label(s.id), "kind": kind,
                      "value": value, "prob": s.prob,
                      "u": s.draw.u, "cumulative_before": s.draw.cumulative_before, "rows": rows,
                      "entropy": s.prediction.entropy, "finish": s.finish})
        ids.append(s.id)
    notes = nt.decode(ids)
    return {"prompt": len(prompt), "steps": steps,
            "notes": [{"pitch": p, "name": nt.note_name(p), "beats": q} for p, q in notes],
            "summary": pitch_summary([notes])}


# ----------------------------------------------------------------------------- the measurements


def pitch_summary(tunes_: list[list[tuple[int, float]]]) -> dict:
    """Lowest and highest pitch, the middle 90% of pitches, and the share on the white keys."""
    pitches = sorted(p for t in tunes_ for p, _ in t)
    if not pitches:
        return {"notes": 0}
    q = statistics.quantiles(pitches, n=20) if len(pitches) > 1 else [pitches[0]] * 19
    return {"notes": len(pitches), "lowest": nt.note_name(pitches[0]), "highest": nt.note_name(pitches[-1]),
            "p5": nt.note_name(round(q[0])), "p95": nt.note_name(round(q[-1])),
            "in_key": sum(p % 12 in WHITE_KEYS for p in pitches) / len(pitches),
            "mean_notes": len(pitches) / len(tunes_)}


def nll_report(model: Transformer | None = None) -> dict:
    """Held-out NLL per note (pitch + length, nats) of the model and of two counting baselines.

    Unigram: each pitch and each length from its frequency. Bigram: each pitch from the pitch
    before it, each length from the length before it. The end token is left out of all three.
    """
    model = model or shipped.load("melody")
    model_total, notes = 0.0, 0
    for ids, nll in token_nll(model, held_out_rows()):
        model_total += sum(v for t, v in zip(ids, nll, strict=True) if t != nt.END)
        notes += sum(nt.is_pitch(t) for t in ids)
    train, test = tunes("train"), tunes("held_out")
    pitch = ([[n.pitch for n in t] for t in train], [[n.pitch for n in t] for t in test])
    length = ([[nt.nearest_length(n.quarters) for n in t] for t in train],
              [[nt.nearest_length(n.quarters) for n in t] for t in test])
    span = nt.HIGH - nt.LOW + 1
    return {
        "model_nll": model_total / notes,
        "unigram_nll": baselines.unigram_nll(*pitch, span) + baselines.unigram_nll(*length, len(nt.LENGTHS)),
        "bigram_nll": baselines.bigram_nll(*pitch, span) + baselines.bigram_nll(*length, len(nt.LENGTHS)),
        "held_out_tunes": len(test), "held_out_notes": notes,
    }


def range_report(samples: int, seed: int = 0, temperature: float = 1.0,
                 model: Transformer | None = None) -> dict:
    """`samples` generated tunes against the held-out chorales: pitch range and share in the key."""
    model = model or shipped.load("melody")
    params = SamplingParams(temperature=temperature)
    made = [sample_tune(model, [], params, seed * 1000 + i, MAX_NOTES) for i in range(samples)]
    real = [[(n.pitch, n.quarters) for n in t] for t in tunes("held_out")]
    return {"generated": pitch_summary(made), "chorales": pitch_summary(real), "samples": samples,
            "temperature": temperature}
