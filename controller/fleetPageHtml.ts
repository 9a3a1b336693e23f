/**
 * The fleet page: one HTML document with its CSS and a little vanilla JavaScript, no build
 * step and no dependency. The data comes from /fleet/stream; the grid draws only the rows in
 * view (fixed row height over a spacer of the whole list), so 5,000 nodes cost the browser
 * what 40 do. Every string from the cluster goes into the DOM as text, never as markup.
 */
export const fleetPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nodepulse fleet</title>
<style>
:root { --ok: #2da44e; --problem: #cf222e; --unknown: #d4a72c; --stale: #8c959f; --absent: #eef1f4; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 13px/1.4 system-ui, sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; }
.muted { color: var(--muted); }
#conn.live::before { content: "\\25CF "; color: var(--ok); }
#conn.down::before { content: "\\25CF "; color: var(--problem); }
main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); gap: 16px; padding: 12px 16px; }
section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin-bottom: 12px; }
#breaker.open { border-color: var(--problem); background: #ffebe9; }
#breaker.closed { border-color: var(--ok); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
#controls { display: flex; gap: 12px; align-items: center; margin-bottom: 6px; }
#filter { width: 260px; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; }
#gridhead, .row { display: grid; grid-template-columns: minmax(160px, 1fr) repeat(var(--cols), 62px) 52px; align-items: center; }
#gridhead { font-weight: 600; color: var(--muted); border-bottom: 1px solid var(--line); padding: 2px 0; }
#gridhead div { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding: 0 2px; font-size: 11px; }
#viewport { height: 62vh; overflow-y: auto; position: relative; border-bottom: 1px solid var(--line); }
#spacer { position: relative; }
.row { position: absolute; left: 0; right: 0; height: 22px; cursor: pointer; }
.row:hover { background: #f6f8fa; }
.row.selected { background: #ddf4ff; }
.name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-left: 2px; font-family: ui-monospace, monospace; font-size: 12px; }
.cell { height: 16px; margin: 0 3px; border-radius: 3px; font-size: 10px; text-align: center; line-height: 16px; color: #fff; }
.c-ok { background: var(--ok); }
.c-problem { background: var(--problem); }
.c-unknown { background: var(--unknown); }
.c-stale { background: repeating-linear-gradient(45deg, var(--stale), var(--stale) 3px, #c9d1d9 3px, #c9d1d9 6px); }
.c-absent { background: var(--absent); }
.doc { font-size: 11px; }
.flag { font-size: 10px; margin-left: 4px; padding: 0 3px; border-radius: 3px; background: #fff8c5; color: #7d4e00; }
#detail code, .cmd { font-family: ui-monospace, monospace; background: #f6f8fa; padding: 2px 4px; border-radius: 3px; }
#timeline li { margin: 2px 0; list-style: none; }
#timeline { padding: 0; margin: 0; max-height: 30vh; overflow-y: auto; }
.Warning { color: var(--problem); }
.legend span { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 3px 0 8px; vertical-align: -1px; }
</style>
</head>
<body>
<header>
  <h1>nodepulse fleet</h1>
  <span id="conn" class="down">connecting</span>
  <span id="replica" class="muted"></span>
  <span id="counts"></span>
  <span class="legend muted"><span class="c-ok"></span>ok<span class="c-problem"></span>problem<span class="c-unknown"></span>unknown<span class="c-stale"></span>stale<span class="c-absent"></span>not reported</span>
</header>
<main>
  <section>
    <div id="controls">
      <input id="filter" type="search" placeholder="filter: node name or reason" autocomplete="off">
      <label><input id="problemsOnly" type="checkbox"> only nodes with a problem</label>
      <span id="shown" class="muted"></span>
    </div>
    <div id="gridhead"></div>
    <div id="viewport"><div id="spacer"></div></div>
  </section>
  <aside>
    <section><h2>Circuit breaker</h2><div id="breaker" class="panel muted">waiting for data</div></section>
    <section><h2>Remediation ladder</h2><div class="panel"><table id="ladder"><thead><tr><th>node</th><th>step</th><th>attempt</th><th>started</th><th>next</th></tr></thead><tbody></tbody></table><div id="ladderEmpty" class="muted">no node on a ladder</div></div></section>
    <section><h2>Node</h2><div id="detail" class="panel muted">click a node for its conditions and the doctor command</div></section>
    <section><h2>Remediation events</h2><div class="panel"><ul id="timeline"></ul></div></section>
  </aside>
</main>
<script>
"use strict";
const ROW = 22, OVERSCAN = 10;
const S = { columns: [], reasons: [], rows: new Map(), view: [], fleet: null, staleMs: 0, selected: null, filter: "", problemsOnly: false, first: true };
window.fleetPage = { firstRenderMs: null, snapshots: 0, patches: 0, bytes: 0 };
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const labels = { DiskIOProblem: "Disk IO", DiskSpaceProblem: "Space", KonnectivityProblem: "Tunnel" };
const short = (type) => labels[type] ?? type.replace(/PressureProblem$|Problem$/, "");
function dur(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60); s %= 60;
  return (h ? h + "h" : "") + (m ? m + "m" : "") + (!h && s ? s + "s" : "") || "0s";
}
const ago = (ms) => (ms == null ? "" : dur(Date.now() - ms));
const when = (ms) => ms == null ? "" : new Date(ms).toLocaleTimeString();
// What a letter means in a column: Ready is healthy when True, an agent condition when False.
function kind(col, letter) {
  if (letter === "-") return "absent";
  if (letter === "S") return "stale";
  if (letter === "U") return "unknown";
  return (col === 0) === (letter === "T") ? "ok" : "problem";
}
function severity(cells) {
  let worst = 2;
  for (let i = 0; i < cells.length; i++) { const k = kind(i, cells[i]); if (k === "problem") return 0; if (k === "unknown" || k === "stale") worst = 1; }
  return worst;
}
function upsert(w, at) {
  const [name, cells, reasons, ages, flags] = w;
  S.rows.set(name, { name, cells, reasons, since: ages.map((a) => (a < 0 ? null : at - a * 1000)), flags, sev: severity(cells) });
}
function rebuildView() {
  const f = S.filter.toLowerCase();
  const match = (r) => !f || r.name.toLowerCase().includes(f) || r.reasons.some((i) => i >= 0 && S.reasons[i].toLowerCase().includes(f));
  S.view = [...S.rows.values()].filter((r) => (!S.problemsOnly || r.sev === 0) && match(r)).sort((a, b) => a.sev - b.sev || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  $("spacer").style.height = S.view.length * ROW + "px";
  let problems = 0; for (const r of S.rows.values()) if (r.sev === 0) problems++;
  $("counts").textContent = S.rows.size + " nodes, " + problems + " with a problem";
  $("shown").textContent = S.view.length === S.rows.size ? "" : S.view.length + " shown";
}
function cellTitle(r, i) {
  const letter = r.cells[i], type = S.columns[i], k = kind(i, letter);
  if (k === "absent") return type + ": not reported on this node";
  const reason = r.reasons[i] >= 0 ? S.reasons[r.reasons[i]] : "no reason";
  const status = letter === "S" ? "stale (the agent stopped re-stating it)" : { T: "True", F: "False", U: "Unknown" }[letter];
  return type + "=" + status + " " + reason + (r.since[i] != null ? ", since " + new Date(r.since[i]).toISOString() + " (" + ago(r.since[i]) + ")" : "") + "; click for the message";
}
function drawGrid() {
  const vp = $("viewport"), spacer = $("spacer");
  const first = Math.max(0, Math.floor(vp.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(S.view.length, Math.ceil((vp.scrollTop + vp.clientHeight) / ROW) + OVERSCAN);
  const frag = document.createDocumentFragment();
  const ladder = new Set((S.fleet?.ladder ?? []).map((l) => l.node));
  for (let n = first; n < last; n++) {
    const r = S.view[n];
    const row = el("div", "row" + (r.name === S.selected ? " selected" : ""));
    row.style.top = n * ROW + "px";
    row.dataset.node = r.name;
    const name = el("div", "name", r.name);
    if (ladder.has(r.name)) name.append(el("span", "flag", "ladder"));
    for (const [f, word] of [["h", "needs human"], ["q", "quarantined"], ["s", "shut down"], ["d", "deleting"]]) if (r.flags.includes(f)) name.append(el("span", "flag", word));
    row.append(name);
    for (let i = 0; i < S.columns.length; i++) {
      const k = kind(i, r.cells[i]);
      const c = el("div", "cell c-" + k, k === "problem" ? "!" : k === "unknown" ? "?" : "");
      c.dataset.col = S.columns[i];
      c.title = cellTitle(r, i);
      row.append(c);
    }
    const doc = el("a", "doc", "doctor");
    doc.href = "#";
    doc.title = "kubectl nodepulse doctor --node " + r.name;
    doc.dataset.doctor = r.name;
    row.append(doc);
    frag.append(row);
  }
  spacer.replaceChildren(frag);
}
let pending = false;
function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; drawGrid(); }); } }
function drawFleet() {
  const f = S.fleet; if (!f) return;
  $("replica").textContent = (f.replica.leading ? "leader" : "follower: breaker and hold-backs are the leader's (port-forward to the pod holding the nodepulse-controller Lease)") + (f.replica.notCurrent ? "; not acting: " + f.replica.notCurrent : "");
  const b = $("breaker");
  if (!f.breaker) { b.className = "panel muted"; b.textContent = f.replica.leading ? "no fleet counts yet" : "known to the leader only"; }
  else {
    const x = f.breaker;
    b.className = "panel " + (x.open ? "open" : "closed");
    b.replaceChildren(el("strong", "", x.open ? "OPEN: nothing starts" : "closed"), el("div", "", x.why),
      el("div", "muted", x.unhealthy + " unhealthy of " + x.counted + " counted; " + x.inFlight + " of at most " + x.maxInFlight + " in flight" + (x.paused ? "; PAUSED" : "") + (x.cooldownUntil > Date.now() ? "; new sequences cool down until " + when(x.cooldownUntil) : "")));
  }
  const body = $("ladder").tBodies[0];
  body.replaceChildren(...f.ladder.map((l) => {
    const tr = el("tr"); tr.dataset.node = l.node;
    tr.append(el("td", "name", l.node), el("td", "", (l.step ? l.step + " " : "") + l.phase + (l.detail ? " (" + l.detail + ")" : "")), el("td", "", l.attempt ?? ""), el("td", "", l.stepStartedAt ? ago(l.stepStartedAt) + " ago" : ""),
      el("td", "", (l.next.at ? (l.next.at > Date.now() ? "in " + dur(l.next.at - Date.now()) : "now") + ": " : "") + l.next.what + (l.heldBack ? "; held back: " + l.heldBack : "")));
    return tr;
  }));
  $("ladderEmpty").style.display = f.ladder.length ? "none" : "";
  $("timeline").replaceChildren(...f.timeline.map((t) => {
    const li = el("li"); li.title = t.message;
    li.append(el("span", "muted", when(t.at) + " "), el("span", "name", t.node + " "), el("span", t.type, t.reason), el("span", "muted", " " + t.source + ": " + t.message.slice(0, 120)));
    return li;
  }));
}
async function showDetail(name) {
  S.selected = name; schedule();
  const d = $("detail");
  const res = await fetch("fleet/node?name=" + encodeURIComponent(name));
  if (!res.ok) { d.textContent = await res.text(); return; }
  const n = await res.json();
  const cmd = el("code", "cmd", n.doctor);
  const copy = el("button", "", "copy");
  copy.onclick = () => navigator.clipboard?.writeText(n.doctor);
  const table = el("table");
  table.append(...n.conditions.map((c) => {
    const tr = el("tr");
    tr.append(el("td", "", c.type), el("td", "", c.status === "-" ? "not reported" : ({ T: "True", F: "False", U: "Unknown" }[c.status]) + (c.stale ? " (stale)" : "")), el("td", "", c.reason ?? ""), el("td", "", c.since ? ago(Date.parse(c.since)) : ""), el("td", "", c.message ?? ""));
    return tr;
  }));
  const parts = [el("div", "name", n.name), el("div", "", "Full check: "), cmd, copy, table];
  if (n.ladder) parts.push(el("div", "", "Ladder: " + (n.ladder.step ?? "") + " " + n.ladder.phase + "; next: " + n.ladder.next.what));
  d.className = "panel"; d.replaceChildren(...parts);
}
$("viewport").addEventListener("scroll", schedule);
$("spacer").addEventListener("click", (e) => {
  const row = e.target.closest(".row"); if (!row) return;
  e.preventDefault();
  if (e.target.dataset.doctor) navigator.clipboard?.writeText(e.target.title).catch(() => {});
  showDetail(row.dataset.node);
});
$("filter").addEventListener("input", (e) => { S.filter = e.target.value.trim(); rebuildView(); schedule(); });
$("problemsOnly").addEventListener("change", (e) => { S.problemsOnly = e.target.checked; rebuildView(); schedule(); });
const source = new EventSource("fleet/stream");
source.onopen = () => { $("conn").className = "live"; $("conn").textContent = "live"; };
source.onerror = () => { $("conn").className = "down"; $("conn").textContent = "reconnecting"; };
source.addEventListener("snapshot", (e) => {
  const d = JSON.parse(e.data);
  window.fleetPage.bytes += e.data.length;
  S.columns = d.columns; S.reasons = d.reasons; S.staleMs = d.staleMs; S.fleet = d.fleet;
  document.documentElement.style.setProperty("--cols", d.columns.length);
  $("gridhead").replaceChildren(el("div", "", "node"), ...d.columns.map((c) => { const h = el("div", "", short(c)); h.title = c; return h; }), el("div", "", ""));
  S.rows.clear();
  for (const w of d.rows) upsert(w, d.at);
  rebuildView(); drawFleet(); drawGrid();
  window.fleetPage.snapshots++;
  if (S.first) { S.first = false; window.fleetPage.firstRenderMs = performance.now(); performance.mark("fleet-first-render"); }
});
source.addEventListener("patch", (e) => {
  const d = JSON.parse(e.data);
  window.fleetPage.bytes += e.data.length;
  S.reasons.length = d.reasonsFrom; S.reasons.push(...d.reasons);
  for (const w of d.rows) upsert(w, d.at);
  for (const name of d.removed) S.rows.delete(name);
  if (d.fleet) { S.fleet = d.fleet; drawFleet(); }
  rebuildView(); schedule();
  window.fleetPage.patches++;
});
setInterval(drawFleet, 5000);
</script>
</body>
</html>
`;
