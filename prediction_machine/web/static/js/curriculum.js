// Placeholder module: the live figure for this section arrives with its own issue.
export function mount(root) {
  root.dataset.ready = "placeholder";
}
