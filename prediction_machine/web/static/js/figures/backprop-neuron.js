// One neuron, one step at a time: forward, loss, backward edge by edge, update.
// Every number comes from POST /api/backprop/neuron
// (prediction_machine.training.backprop.neuron.neuron_step);
// this module only decides how much of that answer to reveal at each click.
import { post } from "../lib/api.js";
import { clear, codeLink, el, errorBox, svg } from "../lib/dom.js";
import { sharedState, shareState } from "../lib/share.js";
import * as format from "../lib/format.js";
import { words } from "../lib/words.js";

const say = words("backprop");

// Where each node of the graph sits (viewBox units), left to right on a wide screen and top to bottom
// on a phone, where the wide graph would be cut off or shrunk past reading. Keys are the Python labels.
const WIDE = {
  box: [960, 300],
  at: {
    x1: [50, 40], w1: [50, 110], x2: [50, 190], w2: [50, 260],
    "x1·w1": [210, 75], "x2·w2": [210, 225], s: [360, 150], b: [360, 265],
    z: [500, 150], y: [640, 150], target: [640, 265], e: [780, 150], L: [910, 150],
  },
};
const NARROW = {
  box: [404, 700],
  at: {
    x1: [52, 40], w1: [152, 40], x2: [252, 40], w2: [352, 40],
    "x1·w1": [102, 140], "x2·w2": [302, 140], s: [202, 240], b: [332, 240],
    z: [202, 340], y: [202, 440], target: [332, 440], e: [202, 540], L: [202, 640],
  },
};
const narrow = window.matchMedia("(max-width: 600px)");
const NODE_W = 96;
const NODE_H = 58;
const OP_NAMES = { "+": "add", "-": "subtract", "*": "multiply", "**2": "square", tanh: "tanh", relu: "ReLU",
  sigmoid: "sigmoid" };
// What each computed node is, in the notation of the formula above the graph (not the raw op code).
const FORMULA = {
  "x1·w1": () => "x1 × w1", "x2·w2": () => "x2 × w2", s: () => "s = sum", z: () => say("z_s_b"),
  y: (act) => `y = ${act}(z)`, e: () => say("e_y_target"), L: () => "L = e²",
};
const FIELDS = [
  ["x1", say("input_x1"), 1.0], ["x2", say("input_x2"), -0.5], ["w1", say("weight_w1"), 0.6],
  ["w2", say("weight_w2"), -0.4], ["b", say("bias_b"), 0.1], ["target", say("target"), 1.0],
  ["lr", say("learning_rate"), 0.5],
];

export function mountNeuron(root) {
  const inputs = {};
  const form = el("div", { class: "bp-inputs" });
  for (const [name, label, value] of FIELDS) {
    inputs[name] = el("input", { id: `bp-n-${name}`, type: "number", step: "0.1", value: String(value),
      min: name === "lr" ? "0.001" : "-10", max: "10" });
    form.append(el("label", { for: `bp-n-${name}` }, label, inputs[name]));
  }
  const activation = el("select", { id: "bp-n-activation" }, ...["tanh", "sigmoid",
    "relu"].map((a) => el("option", { value: a, text: a })));
  form.append(el("label", { for: "bp-n-activation" }, say("activation"), activation));

  const buttons = {
    forward: el("button", { type: "button", class: "primary", "data-tour-stop": "neuron-forward",
      text: say("forward") }),
    edge: el("button", { type: "button", text: say("backward_next_edge") }),
    all: el("button", { type: "button", text: say("backward_all_edges") }),
    update: el("button", { type: "button", text: say("update") }),
    again: el("button", { type: "button", text: say("use_new_weights") }),
  };
  const status = el("p", { class: "bp-status", "data-tour-stop": "neuron-status", role: "status",
    "aria-live": "polite" });
  const graph = svg("svg", { class: "bp-graph", "data-tour-stop": "neuron-graph", viewBox: "0 0 960 300",
    role: "group", "aria-label": say("computation_graph_neuron"), "data-empty": "" });
  narrow.addEventListener("change", () => draw());
  const updates = el("div", { class: "bp-updates", "aria-live": "polite" });
  const errors = el("div");

  root.append(
    el("h4", { text: say("neuron_step_time") }),
    el("p", { class: "note", text: say("y_act_x_w") }),
    form,
    el("div", { class: "row bp-buttons" }, ...Object.values(buttons)),
    status, errors, graph, updates,
    codeLink("prediction_machine.training.backprop.neuron.neuron_step"),
    codeLink("prediction_machine.training.backprop.engine.Value.backward", say("chain_rule_edge_edge")),
  );

  let data = null; // the server's answer for the current numbers
  let stage = "idle"; // idle -> forward -> backward (edge i) -> done -> updated
  let edgeIndex = 0;
  let request = 0;

  async function load() {
    const body = { activation: activation.value };
    for (const [name] of FIELDS) {
      const v = Number(inputs[name].value);
      if (inputs[name].value.trim() === "" || !Number.isFinite(v)) {
        clear(errors).append(errorBox(say("name_please_enter_number", { name })));
        return;
      }
      body[name] = v;
    }
    const mine = ++request;
    try {
      const answer = await post("/api/backprop/neuron", body);
      if (mine !== request) return; // a newer edit already asked again
      data = answer;
      clear(errors);
      setStage("idle");
    } catch (error) {
      if (mine === request) clear(errors).append(errorBox(error.message));
    }
  }

  function setStage(next) {
    stage = next;
    if (next === "idle") edgeIndex = 0;
    draw();
  }

  function nodeByLabel(label) {
    return data.nodes.find((n) => n.label === label);
  }

  function draw() {
    clear(graph);
    clear(updates);
    graph.toggleAttribute("data-empty", !data); // nothing to save yet (lib/export.js)
    if (!data) return;
    const layout = narrow.matches ? NARROW : WIDE;
    const LAYOUT = layout.at;
    graph.setAttribute("viewBox", `0 0 ${layout.box[0]} ${layout.box[1]}`);
    graph.classList.toggle("narrow", narrow.matches);
    const computed = stage !== "idle"; // inputs and parameters are known before the forward pass
    const shownEdges = stage === "idle" || stage === "forward" ? 0 : stage === "backward" ? edgeIndex
      : data.edges.length;
    const grads = new Map(); // node id -> gradient so far (grads arrive edge by edge)
    if (shownEdges > 0 || stage === "backward") grads.set(data.nodes.find((n) => n.label === "L").id, 1);
    for (const edge of data.edges.slice(0, shownEdges)) grads.set(edge.source, edge.grad_after);
    const current = stage === "backward" && edgeIndex > 0 ? data.edges[edgeIndex - 1] : null;

    // Edges first, so nodes sit on top of them; the local derivatives go last, on top of everything.
    const locals = [];
    data.edges.forEach((edge, i) => {
      const [a, b] = between(LAYOUT[data.nodes[edge.source].label], LAYOUT[data.nodes[edge.target].label]);
      const done = i < shownEdges;
      graph.append(svg("line", {
        x1: a[0], y1: a[1], x2: b[0], y2: b[1],
        class: `bp-edge ${done ? "done" : ""} ${edge === current ? "current" : ""}`,
      }));
      if (done) {
        const mx = (a[0] + b[0]) / 2;
        const my = (a[1] + b[1]) / 2 + 4;
        locals.push(svg("text", { x: mx, y: my, class: "bp-local", "text-anchor": "middle",
          text: `×${format.short(edge.local)}` }));
      }
    });
    // Reading order for Tab: left to right in the wide layout, top to bottom in the narrow one.
    const order = [...data.nodes].sort((p, q) => {
      const [px, py] = LAYOUT[p.label], [qx, qy] = LAYOUT[q.label];
      return narrow.matches ? py - qy || px - qx : px - qx || py - qy;
    });
    for (const node of order) {
      const [x, y] = LAYOUT[node.label];
      const grad = grads.get(node.id);
      const isParam = ["w1", "w2", "b"].includes(node.label);
      const name = node.op ? `${FORMULA[node.label](data.activation)} (${OP_NAMES[node.op] || node.op})`
        : node.label;
      const shownValues = computed || !node.op;
      const label = say("node_value",
        { name, value: shownValues ? format.value(node.data) : say("not_computed_yet") })
        + (grad !== undefined ? say("node_gradient", { grad: format.value(grad) }) : "");
      graph.append(svg("g", { class: `bp-node ${isParam ? "param" : ""} ${node.label === "L" ? "loss" : ""}`,
        "data-node": node.label, tabindex: "0", role: "img", "aria-label": label },
        svg("title", { text: label }),
        svg("rect", { x: x - NODE_W / 2, y: y - NODE_H / 2, width: NODE_W, height: NODE_H, rx: 8 }),
        svg("text", { x, y: y - 13, class: "bp-name", "text-anchor": "middle",
          text: node.op ? FORMULA[node.label](data.activation) : node.label }),
        svg("text", { x, y: y + 4, class: "bp-value", "text-anchor": "middle",
          text: shownValues ? format.value(node.data) : "?" }),
        svg("text", { x, y: y + 21, class: "bp-grad", "text-anchor": "middle",
          "data-value": grad === undefined ? "" : String(grad),
          text: grad === undefined ? "" : say("grad_value", { grad: format.value(grad) }) }),
      ));
    }
    graph.append(...locals);
    explain(current, shownEdges);
    buttons.forward.disabled = false;
    buttons.edge.disabled = stage === "idle" || stage === "done" || stage === "updated";
    buttons.all.disabled = buttons.edge.disabled;
    buttons.update.disabled = stage !== "done";
    buttons.again.disabled = stage !== "updated";
    if (stage === "updated") showUpdates();
  }

  function explain(current, shown) {
    const L = nodeByLabel("L");
    const y = nodeByLabel("y");
    if (stage === "idle") status.textContent = say("press_forward_push_inputs");
    else if (stage === "forward") status.textContent = say("forward_pass_done_prediction",
      { data: format.value(y.data), value: format.value(nodeByLabel("target").data),
      data2: format.value(L.data) });
    else if (current) {
      const from = data.nodes[current.target];
      const to = data.nodes[current.source];
      status.textContent = say("edge_label_label_shown", { label: from.label, label2: to.label, shown,
        length: data.edges.length, local: format.value(current.local) }) +
        say("label_grad_local_grad", { label: to.label, local: format.value(current.local),
          grad: format.value(from.grad), contribution: format.value(current.contribution),
          grad_after: format.value(current.grad_after) });
    } else if (stage === "backward") status.textContent = say("dl_dl_loss_changes");
    else if (stage === "done") status.textContent = say("backward_pass_done_every",
      { value: format.value(nodeByLabel("w1").grad), value2: format.value(nodeByLabel("w2").grad),
      value3: format.value(nodeByLabel("b").grad) });
    else status.textContent = say("updated_learning_rate_lr", { lr: data.lr,
      prediction: format.value(data.prediction), new_prediction: format.value(data.new_prediction),
      loss: format.value(data.loss), new_loss: format.value(data.new_loss) });
  }

  function showUpdates() {
    const table = el("table", { class: "bp-update-table" },
      el("caption", { text: say("update_w_w_lr") }),
      el("tr", {}, el("th", { text: say("parameter") }), el("th", { class: "num", text: say("before") }),
        el("th",
        { class: "num", text: say("grad") }), el("th", { class: "num", text: say("after") })),
      ...data.updates.map((u) => el("tr", { "data-param": u.name },
        el("td", { text: u.name }), el("td", { class: "num", text: format.value(u.before) }),
        el("td", { class: "num", "data-value": String(u.grad), text: format.value(u.grad) }), el("td",
          { class: "num", "data-value": String(u.after), text: format.value(u.after) }))),
      el("tr", {}, el("td", { text: say("prediction_y") }), el("td", { class: "num",
        text: format.value(data.prediction) }), el("td", {}), el("td", { class: "num",
        "data-value": String(data.new_prediction), text: format.value(data.new_prediction) })),
      el("tr", { "data-param": "loss" }, el("td", { text: say("loss_l") }), el("td", { class: "num",
        text: format.value(data.loss) }), el("td", {}), el("td", { class: "num",
        "data-value": String(data.new_loss), text: format.value(data.new_loss) })),
    );
    updates.append(table);
  }

  buttons.forward.addEventListener("click", () => setStage("forward"));
  buttons.edge.addEventListener("click", () => {
    if (stage === "forward") setStage("backward");
    else if (stage === "backward") {
      edgeIndex += 1;
      if (edgeIndex >= data.edges.length) setStage("done"); // the last edge completes the pass
      else draw();
    }
  });
  buttons.all.addEventListener("click", () => setStage("done"));
  buttons.update.addEventListener("click", () => setStage("updated"));
  // A shared link's numbers (keys n_x1, n_w1, ... beside the playground's in #backprop?...): numbers in
  // the inputs' range only, since a link is untrusted input.
  const link = sharedState("backprop") || {};
  for (const [name] of FIELDS) {
    const given = link[`n_${name}`], v = Number(given);
    const fits = given !== undefined && given !== "" && Number.isFinite(v) && Math.abs(v) <= 10;
    if (fits) inputs[name].value = given;
  }
  if ([...activation.options].some((o) => o.value === link.n_act)) activation.value = link.n_act;
  const changed = () => {
    shareState("backprop", { ...Object.fromEntries(FIELDS.map(([name]) => [`n_${name}`, inputs[name].value])),
      n_act: activation.value });
    load();
  };
  buttons.again.addEventListener("click", () => {
    for (const u of data.updates) inputs[u.name].value = format.rounded(u.after);
    changed();
  });
  for (const input of [...Object.values(inputs), activation]) input.addEventListener("change", changed);
  load();
}

// Where the line from node centre a to node centre b leaves a's box and enters b's.
function between(a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const t = Math.min(dx ? NODE_W / 2 / Math.abs(dx) : Infinity, dy ? NODE_H / 2 / Math.abs(dy) : Infinity);
  return [[a[0] + dx * t, a[1] + dy * t], [b[0] - dx * t, b[1] - dy * t]];
}
