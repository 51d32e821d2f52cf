"""Layout checks any browser test can call at phone width (390 × 844).

`sideways_scrollers(page, root)` lists the elements inside figures that scroll sideways (or push
the page wider than the screen); `small_controls(page, root)` lists the visible controls under
24 × 24 CSS pixels (WCAG 2.2 target size). Both return short descriptions, so an assertion that
the list is empty fails with the culprits named: `assert not small_controls(page, "#attention")`.
"""

from __future__ import annotations

PHONE = {"width": 390, "height": 844}

_DESCRIBE = """
const d = (node) => {
  const id = node.id ? '#' + node.id : '';
  const cls = typeof node.className === 'string' && node.className.trim()
    ? '.' + node.className.trim().split(/\\s+/).join('.') : '';
  const section = node.closest('section[id]');
  return (section ? '#' + section.id + ' ' : '') + node.tagName.toLowerCase() + id + cls;
};
"""

_SIDEWAYS = (
    """
(root) => {
"""
    + _DESCRIBE
    + """
  const out = [];
  const page = document.documentElement;
  const scrolls = (node) => ['auto', 'scroll'].includes(getComputedStyle(node).overflowX)
    && node.scrollWidth > node.clientWidth + 1;
  // Inside a box that scrolls sideways, an element past the edge is that box's problem, reported once.
  const clipped = (node) => {
    for (let a = node.parentElement; a && a !== document.body; a = a.parentElement) {
      if (scrolls(a)) return true;
    }
    return false;
  };
  if (page.scrollWidth > page.clientWidth + 1) {
    out.push(`the page is ${page.scrollWidth}px wide on a ${page.clientWidth}px screen`);
  }
  for (const scope of document.querySelectorAll(root)) {
    for (const node of [scope, ...scope.querySelectorAll('*')]) {
      if (!node.closest('.figure') || !node.getClientRects().length) continue;
      const r = node.getBoundingClientRect();
      const sticksOut = r.right > page.clientWidth + 1 && getComputedStyle(node).position !== 'fixed';
      if (scrolls(node)) {
        out.push(`${d(node)} scrolls sideways (${node.scrollWidth}px of content in ${node.clientWidth}px)`);
      } else if (sticksOut && !node.parentElement.closest('svg') && !clipped(node)) {
        out.push(`${d(node)} reaches ${Math.round(r.right)}px, past the ${page.clientWidth}px screen`);
      }
    }
  }
  return out;
}
"""
)

_SMALL = (
    """
(root) => {
"""
    + _DESCRIBE
    + """
  const sel = 'button, input:not([type=hidden]), select, textarea, summary, [role=button], [role=slider], '
    + '[role=tab], [tabindex]:not([tabindex="-1"])';
  const out = [];
  for (const scope of document.querySelectorAll(root)) {
    for (const node of scope.querySelectorAll(sel)) {
      if (!node.getClientRects().length || getComputedStyle(node).visibility === 'hidden') continue;
      const r = node.getBoundingClientRect();
      if (r.width < 24 || r.height < 24) {
        out.push(`${d(node)} is ${r.width.toFixed(0)}×${r.height.toFixed(0)}px`);
      }
    }
  }
  return out;
}
"""
)


def sideways_scrollers(page, root: str = "main") -> list[str]:
    """Elements inside a figure under `root` that scroll sideways or reach past the screen's edge."""
    return page.evaluate(_SIDEWAYS, root)


def small_controls(page, root: str = "main") -> list[str]:
    """Visible controls under `root` smaller than 24 × 24 CSS pixels."""
    return page.evaluate(_SMALL, root)
