"""For teachers: every figure saves as a real PNG (and SVG drawings as SVG), and a shared link opens
at its section.

The PNG files come from real Playwright downloads and are checked byte by byte: the signature,
each chunk's CRC-32, and the decoded pixel rows (unfiltered per the PNG specification), which
must hold more than one colour, so a blank image fails.
"""

from __future__ import annotations

import struct
import time
import zlib
from xml.etree import ElementTree

import pytest

pytestmark = pytest.mark.browser
SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (8-bit)


def decode_png(data: bytes, unfilter: bool = True) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of raw samples) of an 8-bit PNG; raises on any corruption.

    With unfilter=False the rows are left filtered (much faster for big screenshots)."""
    assert data[:8] == SIGNATURE, "not a PNG signature"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in CHANNELS
    bpp = CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * bpp
    assert len(raw) == height * (1 + stride), "pixel data does not match the header's size"
    if not unfilter:
        return width, height, [raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)] for y in range(height)]
    rows, prev = [], bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = rows[-1]
    return width, height, rows


def colours(rows: list[bytes], bpp: int = 4) -> int:
    return len({row[i:i + bpp] for row in rows[::7] for i in range(0, len(row), bpp * 7)})


def save(page, figure: str, button: str) -> bytes:
    bar = page.locator(f".figure-export[data-figure='{figure}']")
    with page.expect_download() as info:
        bar.locator(button).click()
    download = info.value
    assert download.suggested_filename.startswith(figure)
    return open(download.path(), "rb").read()


def test_canvas_and_svg_figures_save_as_valid_images(page, artifacts):
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/#backprop")
    page.wait_for_selector("#bp-boundary[data-step='0']", timeout=60_000)
    page.wait_for_selector(".figure-export[data-figure='backprop-bp-boundary']")

    # A canvas: the playground's decision boundary, at twice its on-screen width.
    data = save(page, "backprop-bp-boundary", ".save-png")
    (artifacts / "export-boundary.png").write_bytes(data)
    width, height, rows = decode_png(data)
    shown = page.locator("#bp-boundary").bounding_box()
    assert width >= 2 * int(shown["width"]) - 2 and height > 100
    assert colours(rows) > 20, "the saved boundary is nearly one colour"

    # An SVG: the one-neuron graph, as an SVG file and as a PNG drawn from it.
    svg_bar = page.locator("#bp-neuron .figure-export:has(.save-svg)").first
    figure = svg_bar.get_attribute("data-figure")
    markup = save(page, figure, ".save-svg").decode()
    root = ElementTree.fromstring(markup)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and float(root.get("width")) > 100
    assert "x1" in "".join(root.itertext())  # the node labels travel with the file
    data = save(page, figure, ".save-png")
    (artifacts / "export-neuron-graph.png").write_bytes(data)
    width, height, rows = decode_png(data)
    assert width > 200 and height > 100
    assert colours(rows) > 3, "the saved graph is blank"

    # Every drawn figure of the section got its buttons, and no button sits inside a control.
    bars = page.locator("#backprop .figure-export").count()
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('#backprop svg, #backprop canvas')]"
        ".filter(n => { const r = n.getBoundingClientRect(); return r.width >= 140 && r.height >= 70"
        " && !n.closest('button, summary, a') && !n.parentElement.closest('svg'); }).length"
    )
    assert bars == drawn >= 3


SHARED = {  # a shared link, and the controls that must show its values once the page has opened it
    "backprop": (
        "#backprop?dataset=spiral&lr=0.03&layers=2&width=8",
        {"#bp-dataset": "spiral", "#bp-lr": "0.03"},
    ),
    "attention": ("#attention?layer=13&head=8", {"#att-layer": "13", "#att-head": "8"}),
}


@pytest.mark.parametrize("section", SHARED)
def test_a_shared_link_opens_at_its_section(page, section):
    link, controls = SHARED[section]
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/" + link)
    page.wait_for_selector("#bp-boundary[data-step='0']", timeout=60_000)
    page.wait_for_selector("#attention .att-item", timeout=120_000)
    page.wait_for_selector("#prompt-tokens .token", timeout=120_000)
    deadline = time.time() + 15
    while True:  # sections grow as they mount; the page must end up at the shared one
        top = page.evaluate(f"() => document.getElementById('{section}').getBoundingClientRect().top")
        if abs(top) < 5 or time.time() > deadline:
            break
        page.wait_for_timeout(200)
    assert abs(top) < 5, f"the shared section's top is {top:.0f}px from the top of the screen"
    assert page.evaluate("() => scrollY") > 300
    for selector, value in controls.items():
        assert page.input_value(selector) == value, selector
