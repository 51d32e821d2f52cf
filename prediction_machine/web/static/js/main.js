// Mount each live figure into its section. A section whose module fails keeps its text
// and shows the error, so one broken figure never blanks the page.
import { errorBox } from "./dom.js";

for (const section of document.querySelectorAll("[data-module]")) {
  const mount = section.querySelector("[data-mount]");
  import(`./${section.dataset.module}.js`)
    .then((module) => module.mount(mount))
    .catch((error) => mount.append(errorBox(`This figure failed to load: ${error.message}`)));
}
