"""The status page at ``/``: one HTML document with its CSS and JS inline (no build step, nothing fetched from
elsewhere), that reads ``status.json`` every 10 s while it is shown, and lays out on a phone's width.
Everything is put in with ``textContent``, never as HTML, so no name from the mesh or the log can inject
markup."""

from __future__ import annotations

REFRESH_S = 10

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatewayd</title>
<style>
:root { color-scheme: light dark; --line: #8884; --muted: #888; }
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; padding: .6em; max-width: 60em; }
h1 { font-size: 1.3em; margin: .2em 0; }
h2 { font-size: 1.05em; margin: 1.2em 0 .3em; border-bottom: 1px solid var(--line); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1em .8em; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9em; }
th, td { text-align: left; padding: .15em .5em .15em 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: normal; }
.muted { color: var(--muted); }
.warning { color: #b77600; } .error, .critical, .failed { color: #d33; }
.registered, .leader, .router { color: #2a2; }
#updated { font-size: .85em; }
</style>
</head>
<body>
<h1>gatewayd <span id="role" class="muted">…</span></h1>
<div id="updated" class="muted">loading…</div>
<h2>Thread</h2><dl id="thread"></dl>
<h2>Children <span id="children-count" class="muted"></span></h2><div class="scroll" id="children"></div>
<h2>Routers <span id="routers-count" class="muted"></span></h2><div class="scroll" id="routers"></div>
<h2>Network data</h2><div class="scroll" id="netdata"></div>
<h2>NAT64 <span id="nat64-count" class="muted"></span></h2><div class="scroll" id="nat64"></div>
<h2>LwM2M clients <span id="lwm2m-count" class="muted"></span></h2><div class="scroll" id="lwm2m"></div>
<h2>Recent problems</h2><div class="scroll" id="problems"></div>
<script>
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function show(id, node) { const box = $(id); box.replaceChildren(node); }
function none(text) { return el("p", text, "muted"); }
function cell(v) {
  return Array.isArray(v) ? v.join(" ") : (typeof v === "object" && v !== null ? JSON.stringify(v) : v);
}
function table(rows, columns) {
  if (!rows || !rows.length) return none("none");
  columns = columns || Object.keys(rows[0]);
  const t = el("table"), head = el("tr");
  columns.forEach((c) => head.appendChild(el("th", c)));
  t.appendChild(head);
  rows.forEach((r) => {
    const tr = el("tr");
    columns.forEach((c) => {
      const cls = c === "state" || c === "level" ? String(r[c]) : "";
      tr.appendChild(el("td", cell(r[c] ?? ""), cls));
    });
    t.appendChild(tr);
  });
  return t;
}
function pairs(obj) {
  const dl = el("dl");
  Object.entries(obj).forEach(([k, v]) => {
    if (v === null || v === undefined) return;
    dl.appendChild(el("dt", k.replace(/_/g, " ")));
    dl.appendChild(el("dd", cell(v)));
  });
  return dl;
}
function render(s) {
  const th = s.thread;
  $("role").textContent = th ? th.role : "Thread not running";
  $("role").className = th ? th.role : "failed";
  const facts = th ? [...pairs({...th, ncp: s.ncp ? s.ncp.version : null}).childNodes] : [none("not running")];
  $("thread").replaceChildren(...facts);
  $("children-count").textContent = s.children ? "(" + s.children.length + ")" : "";
  show("children", s.children ? table(s.children) : none("not running"));
  $("routers-count").textContent = s.routers ? "(" + s.routers.length + ")" : "";
  show("routers", s.routers ? table(s.routers) : none("not running"));
  if (s.netdata) {
    const box = el("div");
    box.appendChild(el("div", "on-mesh prefixes", "muted")); box.appendChild(table(s.netdata.prefixes));
    box.appendChild(el("div", "routes", "muted")); box.appendChild(table(s.netdata.routes));
    show("netdata", box);
  } else show("netdata", none("not running"));
  if (s.nat64) {
    const n = s.nat64.sessions ?? s.nat64.mappings_total;
    $("nat64-count").textContent = "(" + s.nat64.backend + ", " + n + " sessions)";
    show("nat64", table(s.nat64.mappings));
  } else { $("nat64-count").textContent = ""; show("nat64", none("not running")); }
  $("lwm2m-count").textContent = s.lwm2m ? "(" + s.lwm2m.length + ")" : "";
  show("lwm2m", s.lwm2m ? table(s.lwm2m) : none("not running"));
  show("problems", table(s.problems, ["time", "level", "component", "message", "count"]));
  $("updated").textContent = "gatewayd " + s.version + " · updated " + new Date().toLocaleTimeString();
}
let timer = null;
async function refresh() {
  clearTimeout(timer);
  try {
    const r = await fetch("status.json", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    $("updated").textContent = "cannot reach gatewayd: " + e.message;
  }
  if (!document.hidden) timer = setTimeout(refresh, REFRESH_MS);
}
document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); else clearTimeout(timer); });
refresh();
</script>
</body>
</html>
""".replace("__REFRESH_MS__", str(REFRESH_S * 1000))
