"""The status page's HTML, CSS and script: one self-contained document (no CDN, no build step).

It loads ``/api/page`` once, then follows ``/events`` (Server-Sent Events) and re-renders on
every change. Both carry :func:`~mlthon.infra.ops.pageview.page_view`'s model, whose figures and
UTC times are already text: the script only escapes and places them. Each component row carries
``id="c-<kind>-<name>"`` and ``data-state``; each strategy ``id="s-<name>"`` with its positions,
PnL sparkline (``.pnl-chart``), latest orders (``.orders``) and fills (``.fills``). A "kill"
button appears only once an ops token has been entered (kept in the tab's session storage) and
posts to ``/api/kill``.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlthon status</title>
<style>
:root { --bg:#0f1419; --fg:#e6e6e6; --dim:#8a94a0; --card:#1a2129; --line:#2a333d;
        --up:#2ea043; --degraded:#d29922; --down:#6e7681; --stale:#f85149; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--fg); }
header { padding:10px 14px; border-bottom:1px solid var(--line); display:flex;
         flex-wrap:wrap; gap:8px; align-items:center; justify-content:space-between; }
h1 { font-size:17px; margin:0; }
h2 { font-size:15px; margin:18px 0 8px; color:var(--dim); }
main { padding:0 14px 24px; max-width:1100px; margin:auto; }
#conn { font-size:12px; color:var(--dim); }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(260px,1fr)); gap:10px; }
.card { background:var(--card); border:1px solid var(--line); border-left:5px solid var(--down);
        border-radius:6px; padding:8px 10px; }
.card[data-state=up] { border-left-color:var(--up); }
.card[data-state=degraded] { border-left-color:var(--degraded); }
.card[data-state=stale] { border-left-color:var(--stale); }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px;
         font-weight:600; color:#000; background:var(--down); }
.badge.up { background:var(--up); } .badge.degraded { background:var(--degraded); }
.badge.stale { background:var(--stale); }
.name { font-weight:600; } .kind { color:var(--dim); font-size:12px; }
.meta { color:var(--dim); font-size:12px; word-break:break-word; }
.err { color:var(--stale); font-size:12px; word-break:break-word; }
table { width:100%; border-collapse:collapse; font-size:13px; }
td, th { text-align:left; padding:3px 6px; border-bottom:1px solid var(--line); }
ul { list-style:none; padding:0; margin:0; font-size:13px; }
li { padding:3px 0; border-bottom:1px solid var(--line); }
button, input { font:inherit; background:var(--card); color:var(--fg);
                border:1px solid var(--line); border-radius:4px; padding:2px 8px; }
.auth { display:flex; gap:6px; align-items:center; font-size:12px; }
.strat { margin-bottom:10px; }
.strat h3 { font-size:13px; margin:8px 0 4px; color:var(--dim); font-weight:600; }
.scroll { overflow-x:auto; }
.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
.when { white-space:nowrap; color:var(--dim); font-size:12px; }
.Buy { color:var(--up); } .Sell { color:var(--stale); }
svg.spark { display:block; max-width:100%; height:auto; background:var(--bg);
            border:1px solid var(--line); border-radius:4px; }
</style>
</head>
<body>
<header><h1>mlthon status</h1>
<span id="conn">connecting&hellip;</span> <span id="updated" class="meta"></span>
<span class="auth"><input id="token" type="password" placeholder="ops token" size="10">
<button id="settoken" type="button">unlock</button></span></header>
<main>
<h2>Components</h2><div id="components" class="grid"></div>
<h2>Strategies</h2><div id="strategies"></div>
<h2>Recent transitions</h2><ul id="transitions"></ul>
<h2>Recent errors</h2><ul id="errors"></ul>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g,
  (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;","'":"&#39;"}[c]));
let token = sessionStorage.getItem("mlthon-token") || "";
function card(c) {
  const rates = Object.entries(c.rates || {}).filter(([k]) => k === "events" || k === "orders")
    .map(([k, v]) => `${esc(k)} ${esc(v)}/s`).join(", ");
  const kill = token && c.pid
    ? `<button data-kill="${esc(c.kind + "/" + c.name)}">kill</button>` : "";
  return `<div class="card" id="c-${esc(c.kind)}-${esc(c.name)}" data-state="${esc(c.state)}">
    <div><span class="name">${esc(c.name)}</span> <span class="kind">${esc(c.kind)}</span>
    <span class="badge ${esc(c.state)}">${esc(c.state)}</span> ${kill}</div>
    <div class="meta">${esc(c.detail)}</div>
    <div class="meta">pid ${esc(c.pid)} @ ${esc(c.host)} &middot; v${esc(c.version)}
    &middot; since <span class="since">${esc(c.since)}</span>
    &middot; heard ${c.age_s == null ? "-" : esc(c.age_s) + "s ago"}</div>
    <div class="meta">${rates}${c.lag_ms ? " &middot; lag " + esc(c.lag_ms) + " ms" : ""}</div>
    ${c.last_error ? `<div class="err">${esc(c.last_error)}</div>` : ""}</div>`;
}
const cell = (v, cls) => `<td${cls ? ` class="${cls}"` : ""}>${esc(v)}</td>`;
function table(cls, head, rows, empty) {
  if (!rows.length) return `<div class="meta ${cls}">${empty}</div>`;
  return `<div class="scroll"><table class="${cls}"><tr>${head.map(([h, c]) =>
    `<th${c ? ` class="${c}"` : ""}>${h}</th>`).join("")}</tr>${rows.join("")}</table></div>`;
}
function strategy(s) {
  const positions = s.positions.map((p) => `<tr>${cell(p.instrument)}${cell(p.qty, "num")}
    ${cell(p.avg_price, "num")}${cell(p.realized, "num")}${cell(p.unrealized, "num")}
    ${cell(p.fees, "num")}</tr>`);
  const orders = s.orders.map((o) => `<tr>${cell(o.time, "when")}${cell(o.cl_id)}
    ${cell(o.instrument)}${cell(o.side, o.side)}${cell(o.price, "num")}${cell(o.qty, "num")}
    ${cell(o.leaves, "num")}<td>${esc(o.status)}${o.detail ?
      ` <span class="meta">${esc(o.detail)}</span>` : ""}</td></tr>`);
  const fills = s.fills.map((f) => `<tr>${cell(f.time, "when")}${cell(f.cl_id)}
    ${cell(f.instrument)}${cell(f.side, f.side)}${cell(f.price, "num")}${cell(f.qty, "num")}
    ${cell(f.fee, "num")}${cell(f.liquidity)}</tr>`);
  return `<div class="card strat" data-state="${esc(s.state)}" id="s-${esc(s.name)}">
    <div><span class="name">${esc(s.name)}</span>
    <span class="kind">${esc(s.run_state)}</span></div>
    <div class="meta">open orders <b class="open-orders">${esc(s.open_orders)}</b> &middot;
    PnL <b class="pnl">${esc(s.pnl)}</b> &middot; callbacks ${esc(s.callbacks)}
    (${esc(s.callback_errors)} errors) &middot; trading
    <b class="risk-state" data-risk="${esc(s.risk_state)}">${esc(s.risk_state)}</b>${
      s.risk_reason ? ` <span class="meta risk-reason">${esc(s.risk_reason)}</span>` : ""}</div>
    <h3>PnL over time</h3>
    <div class="pnl-chart">${s.pnl_chart ||
      `<span class="meta">no PnL sample yet</span>`}</div>
    <div class="meta pnl-window">${esc(s.pnl_window)}</div>
    <h3>Positions</h3>
    ${table("positions", [["instrument"], ["position", "num"], ["avg price", "num"],
      ["realised", "num"], ["unrealised", "num"], ["fees", "num"]], positions, "no position")}
    <h3>Latest orders</h3>
    ${table("orders", [["time (UTC)"], ["order"], ["instrument"], ["side"], ["price", "num"],
      ["qty", "num"], ["leaves", "num"], ["status"]], orders, "no order yet")}
    <h3>Latest fills</h3>
    ${table("fills", [["time (UTC)"], ["order"], ["instrument"], ["side"], ["price", "num"],
      ["qty", "num"], ["fee", "num"], ["liquidity"]], fills, "no fill yet")}</div>`;
}
function render(view) {
  $("components").innerHTML = view.components.map(card).join("") ||
    `<div class="meta">no component heard yet</div>`;
  $("strategies").innerHTML = view.strategies.map(strategy).join("") ||
    `<div class="meta">no strategy</div>`;
  $("transitions").innerHTML = view.transitions.slice(0, 30).map((x) =>
    `<li><span class="when">${esc(x.time)}</span> ${esc(x.kind)}/${esc(x.name)}:
     ${esc(x.old || "new")} &rarr; <b>${esc(x.new)}</b>
     <span class="meta">${esc(x.detail)}</span></li>`).join("");
  $("errors").innerHTML = view.errors.slice(0, 30).map((x) =>
    `<li><span class="when">${esc(x.time)}</span> ${esc(x.kind)}/${esc(x.name)}:
     <span class="err">${esc(x.text)}</span></li>`).join("");
  $("updated").textContent = "updated " + view.updated;
  document.body.dataset.updated = String(view.ts);
}
async function kill(target) {
  if (!confirm("Stop " + target + "?")) return;
  const r = await fetch("/api/kill", {method: "POST", headers: {"Content-Type": "application/json",
    "Authorization": "Bearer " + token}, body: JSON.stringify({target})});
  alert(r.ok ? "shutdown sent to " + target : "refused: " + r.status);
}
document.addEventListener("click", (e) => {
  const k = e.target.dataset && e.target.dataset.kill;
  if (k) kill(k);
});
$("settoken").onclick = () => {
  token = $("token").value; sessionStorage.setItem("mlthon-token", token);
};
fetch("/api/page").then((r) => r.json()).then(render).catch(() => {});
const es = new EventSource("/events");
es.onopen = () => { $("conn").textContent = "live"; };
es.onerror = () => { $("conn").textContent = "reconnecting\\u2026"; };
es.onmessage = (e) => { render(JSON.parse(e.data)); $("conn").textContent = "live"; };
</script>
</body>
</html>
"""
