"""The backprop section in headless Chromium: one neuron step by step, then the playground.

The gradients the page shows are checked against PyTorch autograd for the same numbers.
Screenshots go to test-artifacts/backprop-*.png (look at them).
"""

from __future__ import annotations

import pytest
import torch
from conftest import wait_for_page
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NUMBERS = {"x1": 0.8, "x2": -1.5, "w1": 0.4, "w2": 0.3, "b": -0.1, "target": 0.9, "lr": 0.5}


def torch_step(activation: str):
    n = NUMBERS
    W = torch.tensor([n["w1"], n["w2"], n["b"]], dtype=torch.float64, requires_grad=True)
    y = getattr(torch, activation)(n["x1"] * W[0] + n["x2"] * W[1] + W[2])
    loss = (y - n["target"]) ** 2
    loss.backward()
    after = (W - n["lr"] * W.grad).detach()
    y2 = getattr(torch, activation)(n["x1"] * after[0] + n["x2"] * after[1] + after[2])
    return (
        loss.item(),
        dict(zip(["w1", "w2", "b"], W.grad.tolist(), strict=True)),
        dict(zip(["w1", "w2", "b"], after.tolist(), strict=True)),
        ((y2 - n["target"]) ** 2).item(),
    )


def shown_grad(page, node: str) -> str:
    return page.locator(f'#bp-neuron [data-node="{node}"] .bp-grad').get_attribute("data-value")


def test_one_neuron_forward_backward_update(page, artifacts):
    page.goto("/#backprop")
    page.wait_for_selector('#bp-neuron [data-node="L"]')
    with page.expect_response(lambda r: r.url.endswith("/api/backprop/neuron")):
        page.select_option("#bp-n-activation", "sigmoid")
    for name, value in NUMBERS.items():
        with page.expect_response(lambda r: r.url.endswith("/api/backprop/neuron")):
            page.fill(f"#bp-n-{name}", str(value))
            page.locator(f"#bp-n-{name}").dispatch_event("change")
    page.wait_for_load_state("networkidle")
    # the graph holds the server's answer for *these* numbers
    for name in ("x1", "x2", "w1", "w2", "b", "target"):
        expect(page.locator(f'#bp-neuron [data-node="{name}"] .bp-value')).to_have_text(
            f"{NUMBERS[name]:.4f}"
        )
    expect(page.locator('#bp-neuron [data-node="L"] .bp-value')).to_have_text("?")
    loss, grads, after, new_loss = torch_step("sigmoid")

    page.get_by_role("button", name="Forward").click()
    assert float(page.locator('#bp-neuron [data-node="L"] .bp-value').text_content()) == pytest.approx(
        loss, abs=1e-4
    )
    assert shown_grad(page, "w1") == ""  # no gradient before the backward pass

    edge = page.get_by_role("button", name="Backward: next edge")
    edge.click()  # dL/dL = 1 at the loss
    assert float(shown_grad(page, "L")) == 1.0
    for _ in range(4):
        edge.click()
    # the gradient is on its way, edge by edge
    assert shown_grad(page, "e") != "" and shown_grad(page, "w1") == ""
    assert "local derivative" in page.locator("#bp-neuron .bp-status").text_content()
    page.locator("#bp-neuron").screenshot(path=str(artifacts / "backprop-neuron-backward.png"))
    clicks = 0
    while not page.get_by_role("button", name="Update").is_enabled():
        edge.click()
        clicks += 1
        assert clicks < 20
    for name, g in grads.items():
        assert float(shown_grad(page, name)) == pytest.approx(g, abs=1e-8)  # the exact number the page holds
        text = page.locator(f'#bp-neuron [data-node="{name}"] .bp-grad').text_content()
        assert float(text.split()[-1]) == pytest.approx(g, abs=1e-4)  # and what a reader sees

    page.get_by_role("button", name="Update").click()
    for name, a in after.items():
        assert float(
            page.locator(f'#bp-neuron tr[data-param="{name}"] td:last-child').get_attribute("data-value")
        ) == pytest.approx(a, abs=1e-8)
    shown_new_loss = float(
        page.locator('#bp-neuron tr[data-param="loss"] td:last-child').get_attribute("data-value")
    )
    assert shown_new_loss == pytest.approx(new_loss, abs=1e-8) and shown_new_loss < loss
    page.locator("#bp-neuron").screenshot(path=str(artifacts / "backprop-neuron-update.png"))
    # "Use the new weights" copies them into the inputs, and the next step starts from there.
    with page.expect_response(lambda r: r.url.endswith("/api/backprop/neuron")):
        page.get_by_role("button", name="Use the new weights").click()
    for name in ("w1", "w2", "b"):  # rounded to three decimals, readable and editable
        typed = page.input_value(f"#bp-n-{name}")
        assert float(typed) == pytest.approx(after[name], abs=5e-4)
        assert len(typed.split(".")[-1]) <= 3 if "." in typed else True, typed


def plane(page, attr: str) -> str | None:
    return page.locator("#bp-boundary").get_attribute(f"data-{attr}")


def canvas_pixels(page) -> str:
    return page.evaluate("document.getElementById('bp-boundary').toDataURL()")


def test_playground_learns_moons_add_point_and_reset(page, artifacts):
    page.set_viewport_size({"width": 1100, "height": 1000})
    page.goto("/#bp-playground")
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    assert page.input_value("#bp-dataset") == "moons"
    start_loss = float(page.locator('[data-stat="train-loss"]').get_attribute("data-value"))
    before = canvas_pixels(page)
    points = int(page.locator("#bp-boundary").get_attribute("data-points"))

    play = page.locator("#bp-playground").get_by_role("button", name="Play")
    play.click()
    wait_for_page(page, lambda p: int(plane(p, "step")) >= 240, timeout=40)
    page.locator("#bp-playground").get_by_role("button", name="Pause").click()
    # Let the request in flight land: the step counter stops moving (slow on a busy machine).
    last = None
    while last != plane(page, "step"):
        last = plane(page, "step")
        page.wait_for_timeout(700)
    trained_loss = float(page.locator('[data-stat="train-loss"]').get_attribute("data-value"))
    assert trained_loss < 0.75 * start_loss, (start_loss, trained_loss)
    assert canvas_pixels(page) != before  # the boundary moved
    # The network diagram: hovering a weight shows its value and its gradient; focusing a neuron does too.
    page.locator("#bp-playground .bp-edge").first.hover()
    assert "gradient" in page.locator("#bp-playground .bp-info").text_content()
    page.locator("#bp-playground .bp-unit").nth(3).focus()
    assert "their gradients" in page.locator("#bp-playground .bp-info").text_content()
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-trained.png"))

    # Add a point of class 1 by clicking the plane (top-left corner: deep in class-0 land).
    page.select_option("#bp-mode", index=1)
    page.locator("#bp-boundary").click(position={"x": 40, "y": 40})
    wait_for_page(page, lambda p: plane(p, "points") == str(points + 1))
    # And one with the keyboard: focus the plane, move the cursor, press Enter.
    page.locator("#bp-boundary").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    wait_for_page(page, lambda p: plane(p, "points") == str(points + 2))

    page.locator("#bp-playground").get_by_role("button", name="Reset").click()
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    reset_loss = float(page.locator('[data-stat="train-loss"]').get_attribute("data-value"))
    assert reset_loss != pytest.approx(trained_loss, abs=1e-3)
    assert page.locator("#bp-boundary").get_attribute("data-points") == str(points + 2)  # the points stay
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-reset.png"))


def test_huge_learning_rate_pauses_with_a_reason(page, artifacts):
    page.goto("/#bp-playground")
    wait_for_page(page, lambda p: plane(p, "step") == "0")
    page.select_option("#bp-l2", "0.1")
    page.select_option("#bp-lr", "10")
    page.wait_for_timeout(300)
    page.locator("#bp-playground").get_by_role("button", name="Play").click()
    alert = page.locator("#bp-playground .bp-paused")
    alert.wait_for(timeout=60000)
    assert "learning rate 10" in alert.text_content()
    page.locator("#bp-playground").screenshot(path=str(artifacts / "backprop-playground-paused.png"))
    assert page.locator("#bp-playground").get_by_role("button", name="Play").is_disabled()
