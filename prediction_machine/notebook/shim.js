// What a page gets from its server and its address bar, answered inside one notebook output.
// `payload` (set just above this script by the kernel) holds the page's words and the API answers the
// figure will ask for; a question it does not hold is answered 422 with `payload.refusal`, which says
// how to ask the kernel instead. The "address bar" is a string of this output's own.
const host = (() => {
  const reply = (status, body) => new Response(JSON.stringify(body),
    { status, headers: { "Content-Type": "application/json" } });
  const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  let hash = payload.hash || "";
  return {
    async fetch(path, init = {}) {
      const url = String(path);
      const file = url.match(/\/static\/content\/[^/]+\/(\w+)\.json$/);
      if (file) return file[1] in payload.words ? reply(200, payload.words[file[1]]) : reply(404, {});
      const key = `${(init.method || "GET").toUpperCase()} ${url.split("?")[0]}`;
      const body = init.body ? JSON.parse(init.body) : {};
      const found = (payload.answers[key] || []).find((a) => Object.entries(a.when)
        .every(([name, value]) => same(body[name], value)));
      return found ? reply(200, found.body) : reply(422, { error: payload.refusal });
    },
    location: { get hash() { return hash; } },
    history: { replaceState(_state, _title, url) { hash = url; } },
  };
})();
