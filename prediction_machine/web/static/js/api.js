// The one module that talks to the server. Every figure gets its numbers through here.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
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
    const message = (body && body.error) || `request failed with status ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

export async function get(path, { signal } = {}) {
  return parse(await fetch(path, { signal, headers: { Accept: "application/json" } }));
}

export async function post(path, body, { signal } = {}) {
  const response = await fetch(path, {
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
  const response = await fetch(path, {
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
