// Mount each live figure into its section. A section whose module fails keeps its text
// and shows the error, so one broken figure never blanks the page. The page-wide layer comes
// after: each section's guide bar (skip-to list and tour), the save-as-PNG buttons under every
// figure, and, when the page was opened from a shared link, a scroll to the shared section.
import { errorBox } from "./lib/dom.js";
import { watchFigures } from "./lib/export.js";
import { copyLinkButton, scrollToSharedSection } from "./lib/share.js";
import { presenterToggle } from "./lib/presenter.js";
import { addGuide } from "./lib/tour.js";
import { words } from "./lib/words.js";

const say = words("page");

const sections = [...document.querySelectorAll("[data-module]")];
const mounts = sections.map((section) => section.querySelector("[data-mount]"));

document.querySelector(".language-picker")?.after(presenterToggle());

for (const section of document.querySelectorAll("main > section[id]")) {
  addGuide(section);
  section.querySelector(".section-guide")?.append(copyLinkButton(section.id));
}

const mounted = sections.map((section, i) =>
  import(`./sections/${section.dataset.module}.js`)
    .then((module) => module.mount(mounts[i]))
    .catch((error) => mounts[i].append(errorBox(say("figure_failed_load_message",
      { message: error.message })))));

watchFigures(mounts.filter(Boolean));

// The skip link at the top lands on the live model's own "Skip to" list, one Tab from Generate.
document.querySelector("a.skip")?.addEventListener("click", (event) => {
  const guide = document.querySelector("#inference .section-guide");
  if (!guide) return;
  event.preventDefault();
  guide.scrollIntoView();
  guide.focus({ preventScroll: true });
});

// Sections grow as they mount and fetch, so the shared section is scrolled to once they all have, and
// again whenever the page above it changes height in the next few seconds, until the learner moves.
Promise.allSettled(mounted).then(() => {
  if (!location.hash.includes("?")) return;
  requestAnimationFrame(scrollToSharedSection);
  let moved = false;
  for (const name of ["wheel", "touchstart", "keydown", "pointerdown"]) {
    addEventListener(name, () => { moved = true; }, { once: true, passive: true });
  }
  const follow = new ResizeObserver(() => { if (!moved) scrollToSharedSection(); });
  follow.observe(document.querySelector("main"));
  setTimeout(() => follow.disconnect(), 5000);
});
