import { words } from "./words.js";

const say = words("page");
// The one module that talks to the server. Every figure gets its numbers through here.

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body; // the whole answer: some errors carry more than the message (both tokenizations)
  }
}

async function parse(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body && body.error) || say("request_failed_status_status", { status: response.status });
    throw new ApiError(response.status, message, body);
  }
  return body;
}

// Right after `serve` the model is still loading: the server answers 503 with
// X-Model-State: loading and Retry-After. We show a note and ask again until it is ready,
// so the page never shows an error for a model that is merely not loaded yet.
let loadingNote = null;

function showLoading(on) {
  if (on && !loadingNote) {
    loadingNote = document.createElement("div");
    loadingNote.setAttribute("role", "status");
    loadingNote.className = "model-loading-note";
    loadingNote.textContent = say("model_loading_page_continues");
    Object.assign(loadingNote.style, {
      position: "fixed", left: "0", right: "0", bottom: "1rem", margin: "0 auto", zIndex: "1000",
      width: "max-content", maxWidth: "calc(100vw - 2rem)", boxSizing: "border-box",
      padding: ".6rem 1rem", borderRadius: ".5rem", background: "#1f2937", color: "#fff",
      boxShadow: "0 2px 8px rgba(0,0,0,.3)", textAlign: "center",
    });
    document.body.append(loadingNote);
  } else if (!on && loadingNote) {
    loadingNote.remove();
    loadingNote = null;
  }
}

function sleep(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason ?? new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

// fetch, asking again while the model loads.
async function send(path, init) {
  for (;;) {
    const response = await fetch(path, init);
    if (response.status !== 503 || response.headers.get("X-Model-State") !== "loading") {
      showLoading(false);
      return response;
    }
    showLoading(true);
    const wait = Math.min(10, Math.max(1, Number(response.headers.get("Retry-After")) || 2));
    await sleep(wait, init.signal);
  }
}

export async function get(path, { signal } = {}) {
  return parse(await send(path, { signal, headers: { Accept: "application/json" } }));
}

export async function post(path, body, { signal } = {}) {
  const response = await send(path, {
    method: "POST",
    signal,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  return parse(response);
}

// DELETE. keepalive lets the request finish while the page unloads (pagehide).
export async function del(path, { keepalive = false } = {}) {
  return parse(await fetch(path, { method: "DELETE", keepalive, headers: { Accept: "application/json" } }));
}

// POST, then read a text/event-stream: onEvent(name, data) for each event.
// Resolves when the stream ends; abort the signal to cancel (the server stops computing).
export async function stream(path, body, onEvent, { signal } = {}) {
  const response = await send(path, {
    method: "POST",
    signal,
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
  if (!response.ok) return parse(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of chunk.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
