// The interactive graph page of tinygrad-s2s (written by tinygrad_s2s/viz/html.py).
// Python sent every node's chain of groups (module calls and folds of repeated calls, outermost
// first); this script keeps the set of open groups, turns it into DOT, lets Graphviz (WebAssembly)
// lay it out, and wires clicks, hover, search and the gradient overlay onto the SVG.
const D = JSON.parse(document.getElementById("tg-data").textContent);
const N = D.nodes, G = D.groups;
const $ = (id) => document.getElementById(id);
const readers = {}, producer = {};
for (const [s, t] of D.edges) {
  if (N[s].k === "tensor") (readers[s] ||= []).push(t); else producer[t] = s;
}
let open = new Set(D.open);
let showGrads = false;
let svgRefs = new Map();       // svg element id -> {kind: "op"|"tensor"|"box"|"cluster", ref}
let renders = 0;
let graphviz = null;

// a name as DOT text, never markup: Graphviz reads backslash escapes and decodes entities (&lt;)
const esc = (s) => String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/&/g, "&amp;").replace(/\n/g, "\\n");
const html = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const plural = (n, w, ws = w + "s") => `${n} ${n === 1 ? w : ws}`;
const fmt = (v) => typeof v === "number" ? (v === 0 ? "0" : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4)) : String(v);

function matches(path, name) { return path === name || path.endsWith("." + name); }

function openWithAncestors(key) {
  for (let k = key; k; k = G[k].parent) open.add(k);
}

// #expand=PATH opens the module PATH (a path or its trailing parts, as --collapse) and everything
// inside it, folds unrolled; returns the names that match no module
function expandPaths(names) {
  const unknown = [];
  for (const name of names) {
    const hits = Object.keys(G).filter((k) => matches(G[k].path, name));
    if (!hits.length) unknown.push(name);
    hits.forEach(openWithAncestors);
    for (const [k, g] of Object.entries(G)) {
      if (hits.some((h) => g.path === G[h].path || g.path.startsWith(G[h].path + "."))) open.add(k);
    }
  }
  return unknown;
}

function firstClosed(chain) {
  for (let i = 0; i < chain.length; i++) if (!open.has(chain[i])) return i;
  return -1;
}

function clusterOf(chain, i) {
  const upto = i < 0 ? chain : chain.slice(0, i);
  return upto.length ? upto[upto.length - 1] : null;
}

// ------------------------------------------------------------------ what is drawn for the open set
function plan() {
  const rep = {}, items = new Map([[null, []]]), edges = new Map(), loops = new Set();
  const place = (ref, where) => {
    if (!items.has(where)) items.set(where, []);
    if (!items.get(where).includes(ref)) items.get(where).push(ref);
    for (let w = where; w; w = G[w].parent) if (!items.has(G[w].parent ?? null)) items.set(G[w].parent ?? null, []);
  };
  const edge = (a, b, tensor) => {       // `tensor`: the intermediate tensor the edge carries
    if (a === b) return;
    const key = a + "\u0000" + b;
    if (!edges.has(key)) edges.set(key, { a, b, tensors: [] });
    if (tensor) edges.get(key).tensors.push(tensor);
  };
  for (const [id, n] of Object.entries(N)) {
    if (n.k !== "op") continue;
    const i = firstClosed(n.chain);
    rep[id] = i < 0 ? id : n.chain[i];
    place(rep[id], clusterOf(n.chain, i));
    if (i >= 0 && G[rep[id]].kind === "fold" && G[rep[id]].recurrent) loops.add(rep[id]);
  }
  for (const [id, n] of Object.entries(N)) {
    if (n.k !== "tensor") continue;
    const i = firstClosed(n.chain);
    const box = i < 0 ? null : n.chain[i];
    const rs = readers[id] || [];
    if (n.leaf || n.out) {
      const swallowed = box && !n.out && rs.every((r) => rep[r] === box) && (n.param || (!n.rg && !n.name));
      if (swallowed) continue;
      place(id, clusterOf(n.chain, i));
      for (const r of rs) edge(id, rep[r], null);
      if (producer[id]) edge(rep[producer[id]], id, null);
      continue;
    }
    const src = rep[producer[id]];
    for (const r of rs) {
      const b = rep[r];
      if (b === src || (G[b] && n.chain.includes(b))) continue;   // never out of a box and back in
      edge(src, b, id);
    }
  }
  return { rep, items, edges: [...edges.values()], loops: [...loops] };
}

// ------------------------------------------------------------------ DOT text
const FILL = ["#f7f7f7", "#eef3fb", "#fdf6ec", "#f1f8ee"];

function gradRange() {
  const norms = Object.values(N).filter((n) => typeof n.grad === "number" && n.grad > 0).map((n) => Math.log10(n.grad));
  return norms.length ? [Math.min(...norms), Math.max(...norms)] : null;
}

function gradColour(norm, range, line = false) {
  if (typeof norm !== "number") return line ? "#cc0000" : "#f4cccc";    // NaN or Inf arrive as text
  if (!range || norm <= 0) return line ? "#bbbbbb" : "#ffffff";
  const t = range[1] > range[0] ? (Math.log10(norm) - range[0]) / (range[1] - range[0]) : 1;
  // "#rrggbb": Graphviz reads no CSS rgb() and paints what it cannot read black
  const mix = (a, b) => Math.round(a + (b - a) * t).toString(16).padStart(2, "0");
  return line ? `#${mix(190, 204)}${mix(190, 0)}${mix(190, 0)}` : `#${mix(255, 230)}${mix(255, 102)}${mix(255, 102)}`;
}

function toDot(p) {
  svgRefs = new Map();
  let next = 0;
  const sid = (kind, ref) => { const id = `tg${next++}`; svgRefs.set(id, { kind, ref }); return id; };
  const range = showGrads ? gradRange() : null;
  const out = ['digraph tinygrad_s2s {',
    'graph [rankdir=TB fontname=Helvetica fontsize=11 nodesep=0.25 ranksep=0.35 bgcolor=transparent];',
    'node [fontname=Helvetica fontsize=10];',
    'edge [fontname=Helvetica fontsize=8 arrowsize=0.6 color="#555555" fontcolor="#666666"];'];
  const children = new Map();
  for (const key of p.items.keys()) {
    if (key === null) continue;
    const parent = G[key].parent ?? null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(key);
  }
  const emit = (where, indent) => {
    for (const ref of p.items.get(where) || []) out.push(indent + nodeDot(ref, sid, range));
    for (const key of children.get(where) || []) {
      const g = G[key];
      const where = g.kind === "call" ? g.label + g.which : g.path;
      const head = g.kind === "fold" ? `${g.label}  ×${g.count} unrolled` : (g.cls ? `${g.cls} (${where})` : where);
      out.push(`${indent}subgraph "cluster_${esc(key)}" {`);
      out.push(`${indent}  id="${sid("cluster", key)}" label="▾ ${esc(head)}" labeljust=l fontsize=11 ` +
               `style="rounded,filled${g.kind === "fold" ? ",dashed" : ""}" fillcolor="${FILL[g.path.split(".").length % FILL.length]}" color="#999999";`);
      emit(key, indent + "  ");
      out.push(`${indent}}`);
    }
  };
  emit(null, "  ");
  for (const e of p.edges) out.push(`  "${esc(e.a)}" -> "${esc(e.b)}"${edgeAttrs(e, range)};`);
  for (const key of p.loops) {
    out.push(`  "${esc(key)}" -> "${esc(key)}" [style=dashed color="#a64d79" label="${G[key].steps ? "next step" : "next call"}"];`);
  }
  out.push("}");
  return out.join("\n");
}

// an edge is labelled with the shapes it carries (and, with the overlay on, their gradient norms,
// the largest setting its colour)
function edgeAttrs(e, range) {
  if (!e.tensors.length) return "";
  const shapes = [...new Set(e.tensors.map((t) => N[t].shape))];
  let label = shapes.slice(0, 2).join(" ") + (shapes.length > 2 ? " …" : "");
  let extra = "";
  if (showGrads) {
    const norms = e.tensors.map((t) => N[t].grad).filter((g) => g !== undefined);
    if (norms.length) {
      const bad = norms.find((g) => typeof g !== "number");
      const top = bad ?? Math.max(...norms);
      label += `\n‖g‖ ${fmt(top)}`;
      extra = ` color="${gradColour(top, range, true)}" penwidth=2`;
    }
  }
  return ` [label="${esc(label)}"${extra}]`;
}

function nodeDot(ref, sid, range) {
  if (G[ref]) {
    const g = G[ref];
    const head = g.cls ? `${g.cls}\n` : "";
    if (g.kind === "fold") {
      const each = Math.round(g.ops / g.count);
      return `"${esc(ref)}" [id="${sid("box", ref)}" shape=box3d style="filled,bold" fillcolor="#ead1dc" color="#a64d79" ` +
             `label="${esc(`▸ ${head}${g.label}  ×${g.count}\n${plural(each, "op")} each`)}"];`;
    }
    const call = g.which;
    return `"${esc(ref)}" [id="${sid("box", ref)}" shape=box3d style=filled fillcolor="#d9d2e9" color="#674ea7" ` +
           `label="${esc(`▸ ${head}${g.label}${call}\n${plural(g.ops, "op")}`)}"];`;
  }
  const n = N[ref];
  if (n.k === "op") {
    const [fill, color] = n.bw ? ["#f4cccc", "#cc4125"] : ["#c9daf8", "#3c78d8"];   // red: recorded in a backward
    return `"${esc(ref)}" [id="${sid("op", ref)}" shape=box style="rounded,filled" fillcolor="${fill}" color="${color}" label="${esc(n.op)}"];`;
  }
  const lines = [];
  if (n.name) lines.push(n.name); else if (n.value !== null && n.value !== undefined) lines.push(fmt(n.value));
  if (n.value === null || n.value === undefined) lines.push(n.shape);
  let fill = n.param ? "#fce5cd" : n.leaf ? "#eeeeee" : "#ffffff", color = n.param ? "#e69138" : "#666666";
  if (n.out) { fill = "#d9ead3"; color = "#6aa84f"; }
  if (showGrads && n.grad !== undefined) { lines.push(`‖g‖ ${fmt(n.grad)}`); fill = gradColour(n.grad, range); }
  return `"${esc(ref)}" [id="${sid("tensor", ref)}" shape=ellipse height=0.3 style=filled fillcolor="${fill}" color="${color}" label="${esc(lines.join("\n"))}"];`;
}

// ------------------------------------------------------------------ drawing and events
function countVisible() {
  let ops = 0, boxes = 0;
  for (const { kind } of svgRefs.values()) { if (kind === "op") ops++; else if (kind !== "tensor") boxes++; }
  return { ops, boxes };
}

function render(anchor) {
  const before = anchor ? elementFor(anchor)?.getBoundingClientRect() : null;
  const p = plan();
  const svg = graphviz.dot(toDot(p));
  $("graph").innerHTML = svg;
  applyZoom();
  for (const el of $("graph").querySelectorAll("g[id]")) {
    const ref = svgRefs.get(el.id);
    if (!ref) continue;
    el.dataset.ref = ref.ref;
    el.setAttribute("class", ref.kind === "op" ? "node" : ref.kind === "tensor" ? "tensor"
      : ref.kind === "box" ? "cluster closed" : "cluster open");
    el.querySelector("title")?.remove();       // the info panel replaces the browser's tooltip
  }
  const graph = $("graph"), view = $("view");
  const after = before ? elementFor(anchor)?.getBoundingClientRect() : null;
  if (after) {                                   // keep the clicked box where the user was looking
    view.scrollLeft += after.left - before.left;
    view.scrollTop += after.top - before.top;
    const now = elementFor(anchor).getBoundingClientRect();    // scrolling stops at the drawing's edge:
    for (const [side, a, b] of [["marginLeft", before.left, now.left], ["marginTop", before.top, now.top]]) {
      graph.style[side] = `${Math.max(0, (parseFloat(graph.style[side]) || 0) + a - b)}px`;   // a margin does the rest
    }
  } else {
    graph.style.marginLeft = graph.style.marginTop = "0px";
  }
  renders++;
  const { ops, boxes } = countVisible();
  $("status").textContent = `${plural(ops, "op")} and ${plural(boxes, "module box", "module boxes")} shown of ${plural(Object.values(N).filter((n) => n.k === "op").length, "op")}`;
  document.body.dataset.visibleOps = ops;
  document.body.dataset.renders = renders;
}

let zoom = 1;
function applyZoom() {
  const svg = $("graph").querySelector("svg");
  if (!svg) return;
  const vb = svg.viewBox.baseVal;
  svg.setAttribute("width", `${vb.width * zoom}pt`);
  svg.setAttribute("height", `${vb.height * zoom}pt`);
  $("zoomlevel").textContent = `${Math.round(zoom * 100)}%`;
}

function fit(least = 0) {
  const svg = $("graph").querySelector("svg");
  const vb = svg.viewBox.baseVal, view = $("view");    // viewBox units are points: 4/3 px each
  zoom = Math.max(least, Math.min(1, (view.clientWidth - 10) / (vb.width * 4 / 3),
                                  (view.clientHeight - 10) / (vb.height * 4 / 3)));
  applyZoom();
}

function elementFor(ref) {
  for (const el of $("graph").querySelectorAll("g[data-ref]")) if (el.dataset.ref === ref) return el;
  return null;
}

function toggle(ref) {
  if (!G[ref]) return;
  if (open.has(ref)) open.delete(ref); else open.add(ref);
  render(ref);
}

function infoFor(ref) {
  const rows = [];
  const row = (k, v) => rows.push(`<tr><td>${html(k)}</td><td>${v}</td></tr>`);
  let title;
  if (G[ref]) {
    const g = G[ref];
    title = g.cls ? `${g.cls} — ${g.label}` : g.label;
    row("module", `<code>${html(g.path)}</code>`);
    if (g.note) row("holds", html(g.note));
    if (g.kind === "fold") { row("folded", `${g.count} identical calls (click to ${open.has(ref) ? "fold" : "unroll"})`); row("ops", `${Math.round(g.ops / g.count)} each`); }
    else row("ops", String(g.ops));
    if (g.recurrent) row("recurrent", "each call reads the previous call's output");
    row("click", open.has(ref) ? "close this box" : "open this box");
  } else if (N[ref].k === "op") {
    const n = N[ref];
    title = `op ${n.op}`;
    row("module", `<code>${html(n.module || "(top level)")}</code>`);
    if (n.bw) row("part of", html(n.bw));
    row("inputs", n.ins.map(html).join(", "));
    row("output", `${html(n.shape)} ${html(n.dtype)}`);
    row("called at", `<code>${html(n.loc)}</code>`);
    if (n.saved.length) row("saved for backward", n.saved.map(([name, shape, dtype, norm]) =>
      `<code>${html(name)}</code> ${html(shape)} ${html(dtype)}${norm === null ? "" : ` ‖·‖ ${fmt(norm)}`}`).join("<br>"));
  } else {
    const n = N[ref];
    title = n.name ? `tensor ${n.name}` : n.param ? "parameter" : n.leaf ? "input" : "tensor";
    row("shape", html(n.shape));
    row("dtype", html(n.dtype));
    row("module", `<code>${html(n.module || "(top level)")}</code>`);
    if (n.value !== null && n.value !== undefined) row("value", fmt(n.value));
    if (n.grad !== undefined) row("‖grad‖", fmt(n.grad));
    else if (n.leaf && n.rg) row("‖grad‖", '<span class="hint">none yet (run backward(retain_graph=True) before drawing)</span>');
  }
  return `<h2>${html(title)}</h2><table>${rows.join("")}</table>`;
}

function wire() {
  $("graph").addEventListener("click", (ev) => {
    const el = ev.target.closest("g[data-ref]");
    if (el && G[el.dataset.ref]) toggle(el.dataset.ref);
  });
  $("graph").addEventListener("mouseover", (ev) => {
    const el = ev.target.closest("g[data-ref]");
    if (el) $("info").innerHTML = infoFor(el.dataset.ref);
  });
  $("collapse").addEventListener("click", () => { open = new Set(); render(); });
  $("zoomin").addEventListener("click", () => { zoom *= 1.25; applyZoom(); });
  $("zoomout").addEventListener("click", () => { zoom /= 1.25; applyZoom(); });
  $("fit").addEventListener("click", () => fit());
  $("expandall").addEventListener("click", () => { open = new Set(Object.keys(G)); render(); });
  const anyGrad = Object.values(N).some((n) => n.grad !== undefined);
  $("grads").disabled = !anyGrad;
  if (!anyGrad) $("gradlabel").title = "no gradients: call backward(retain_graph=True) before to_html";
  $("grads").addEventListener("change", (ev) => { showGrads = ev.target.checked; render(); });
  $("search").addEventListener("input", search);
  $("search").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { const first = $("results").querySelector("li"); if (first) first.click(); }
    if (ev.key === "Escape") { $("results").hidden = true; }
  });
}

function search() {
  const q = $("search").value.trim().toLowerCase();
  const list = $("results");
  list.innerHTML = "";
  for (const el of $("graph").querySelectorAll("g.match")) el.classList.remove("match");
  if (!q) { list.hidden = true; return; }
  const hits = [], seen = new Set();
  for (const [key, g] of Object.entries(G)) {
    if (g.path.toLowerCase().includes(q) && !seen.has(g.path)) { seen.add(g.path); hits.push({ key, text: g.label, kind: g.cls || "module" }); }
  }
  for (const [id, n] of Object.entries(N)) {
    if (n.k === "op" && (n.op.toLowerCase().includes(q) || n.module.toLowerCase().includes(q)))
      hits.push({ key: id, text: `${n.op}`, kind: n.module || "(top level)" });
  }
  for (const h of hits.slice(0, 40)) {
    const li = document.createElement("li");
    li.innerHTML = `${html(h.text)}<span class="kind">${html(h.kind)}</span>`;
    li.addEventListener("click", () => reveal(h.key));
    list.appendChild(li);
  }
  list.hidden = hits.length === 0;
  for (const el of $("graph").querySelectorAll("g[data-ref]")) {
    const r = el.dataset.ref;
    const text = G[r] ? G[r].path : N[r].k === "op" ? `${N[r].op} ${N[r].module}` : "";
    if (text.toLowerCase().includes(q)) el.classList.add("match");
  }
}

function reveal(key) {
  if (G[key]) { if (G[key].parent) openWithAncestors(G[key].parent); }
  else N[key].chain.forEach((k) => open.add(k));
  $("results").hidden = true;
  render();
  const el = elementFor(key);
  if (el) { el.classList.add("match"); el.scrollIntoView({ block: "center", inline: "center" }); $("info").innerHTML = infoFor(key); }
}

async function main() {
  const hash = new URLSearchParams(location.hash.slice(1));
  let unknown = [];
  if (hash.get("expand")) unknown = expandPaths(hash.get("expand").split(",").map((s) => s.trim()).filter(Boolean));
  graphviz = await globalThis.TgGraphviz.load();
  wire();
  render();
  fit(0.6);               // a big drawing opens shrunk (not below 60%, where labels stay readable)
  if (unknown.length) $("status").textContent += ` — #expand: no module ${unknown.join(", ")}`;
  document.body.dataset.readyMs = Math.round(performance.now());
  document.body.dataset.state = "ready";
}

// Headless tools that wait in virtual time (chromium --dump-dom --virtual-time-budget=MS) advance it
// whenever the page is idle, and compiling the layout engine happens off the main thread; a chain
// of zero-delay messages keeps the page busy until the first drawing is on screen, so the dump
// shows it. In a normal browser this only yields to the event loop for the ~1 s of loading.
const keepBusy = new MessageChannel();
keepBusy.port1.onmessage = () => { if (document.body.dataset.state === "loading") keepBusy.port2.postMessage(0); };
keepBusy.port2.postMessage(0);

globalThis.tgReady = main().catch((err) => {
  document.body.dataset.state = "error";
  $("status").textContent = `error: ${err && err.message ? err.message : err}`;
  throw err;
});
