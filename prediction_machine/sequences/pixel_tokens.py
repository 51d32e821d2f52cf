"""The pixel tokenizer: an 8 x 8 digit <-> 65 token ids. The whole of what differs from text.

    ids 0..16   a grey level (0 = white paper, 16 = full ink)
    ids 17..26  "draw the digit 0" .. "draw the digit 9": the first token, the request
    id  27      "draw any digit"

An image is read like a page, row by row from the top left, behind its request token:

    >>> encode([0] * 64, digit=3)[:3]
    [20, 0, 0]
    >>> decode(encode([5] * 64, digit=None))[:2]
    [5, 5]
"""

from __future__ import annotations

LEVELS = 17  # grey levels in scikit-learn's digits
SIDE = 8  # the image is SIDE x SIDE
PIXELS = SIDE * SIDE
FIRST_DIGIT = LEVELS  # id of "draw the digit 0"
ANY = FIRST_DIGIT + 10  # id of "draw any digit"
VOCAB = ANY + 1
SEQ_LEN = 1 + PIXELS  # the request, then every pixel


def request(digit: int | None) -> int:
    """The first token: which digit is asked for (None: any)."""
    if digit is None:
        return ANY
    if not 0 <= digit <= 9:
        raise ValueError(f"digit must be 0..9 (or none for any digit), got {digit}")
    return FIRST_DIGIT + digit


def encode(pixels: list[int], digit: int | None) -> list[int]:
    """The request token, then the pixels as they are: a grey level is its own id."""
    if any(not 0 <= p < LEVELS for p in pixels):
        raise ValueError(f"grey levels must be 0..{LEVELS - 1}")
    return [request(digit)] + list(pixels)


def is_level(token: int) -> bool:
    return 0 <= token < LEVELS


def decode(ids: list[int]) -> list[int]:
    """Pixel ids back to grey levels, dropping the request token if present.

    A request token drawn where a pixel belongs (the model gives it almost no probability)
    becomes blank paper, 0, so a picture always has 64 valid pixels.
    """
    body = ids[1:] if ids and not is_level(ids[0]) else ids
    return [t if is_level(t) else 0 for t in body]


def label(token: int) -> str:
    """A token as the page names it: '7' for a grey level, 'digit 3', 'any digit'."""
    if is_level(token):
        return str(token)
    return "any digit" if token == ANY else f"digit {token - FIRST_DIGIT}"
