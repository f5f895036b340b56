// Fleet view: every engine with its RUL, interval, status and freshness. The whole fleet is
// fetched once per poll and sorted/filtered here, so typing in the search box costs no request.
// Rows are rendered as one HTML string (one layout pass for 1,000+ engines).
import { ago, api, badge, engineView, esc, fmt, isoOf, listOf, parseTime, poll, requireKey } from "./common.js";

const rowsEl = document.getElementById("fleet-rows");
const emptyEl = document.getElementById("fleet-empty");
const summaryEl = document.getElementById("fleet-summary");
const form = document.getElementById("fleet-filters");
const q = document.getElementById("q");
const statusSel = document.getElementById("status");
const sortSel = document.getElementById("sort");

const RANK = { critical: 0, warning: 1, healthy: 2, unknown: 3 };
let engines = [];
let lastRender = "";
// Timings the end-to-end test reads (ms): fetch+parse and build+insert of the rows.
window.__fleet = { fetchMs: null, renderMs: null, rows: 0, renders: 0 };

function restoreFilters() {
  const p = new URLSearchParams(location.search);
  q.value = p.get("q") || "";
  if (p.get("status") !== null) statusSel.value = p.get("status");
  if (p.get("sort")) sortSel.value = p.get("sort");
}

function saveFilters() {
  const p = new URLSearchParams();
  if (q.value) p.set("q", q.value);
  if (statusSel.value) p.set("status", statusSel.value);
  if (sortSel.value !== "rul") p.set("sort", sortSel.value);
  const s = p.toString();
  history.replaceState(null, "", s ? "?" + s : location.pathname);
}

function comparator(sort) {
  const desc = sort.startsWith("-");
  const key = desc ? sort.slice(1) : sort;
  const dir = desc ? -1 : 1;
  const byId = (a, b) => a.id.localeCompare(b.id, undefined, { numeric: true });
  if (key === "engine_id") return (a, b) => dir * byId(a, b);
  if (key === "status") return (a, b) => (RANK[a.status] ?? 4) - (RANK[b.status] ?? 4) || nullsLast(a.rul, b.rul, 1) || byId(a, b);
  if (key === "last_update") return (a, b) => nullsLast(a.t, b.t, dir) || byId(a, b);
  return (a, b) => nullsLast(a.rul, b.rul, dir) || byId(a, b);
}

function nullsLast(x, y, dir) {
  if (x === null && y === null) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return dir * (x - y);
}

function matches(e, text, status) {
  if (status && e.status !== status) return false;
  if (!text) return true;
  if (e.id.toLowerCase().includes(text)) return true;
  return Object.values(e.tags).some((v) => String(v).toLowerCase().includes(text));
}

function render(force = false) {
  const t0 = performance.now();
  const text = q.value.trim().toLowerCase();
  const shown = engines.filter((e) => matches(e, text, statusSel.value)).sort(comparator(sortSel.value));
  const html = shown.map((e) => {
    const href = "/ui/engines/" + encodeURIComponent(e.id);
    const interval = e.lower === null ? "–" : `${fmt(e.lower)} – ${fmt(e.upper)}`;
    return `<tr class="row-${e.status}"><th scope="row" data-label="Engine"><a href="${href}">${esc(e.id)}</a></th>` +
      `<td data-label="Status">${badge(e.status)}</td><td class="num" data-label="RUL">${fmt(e.rul)}</td>` +
      `<td class="num" data-label="Interval">${interval}</td><td class="num" data-label="Last cycle">${fmt(e.lastCycle, 0)}</td>` +
      `<td data-label="Last update"><time datetime="${isoOf(e.updated)}">${ago(e.updated)}</time></td></tr>`;
  }).join("");
  // Skip the DOM work when nothing visible changed (most polls on a quiet fleet).
  if (force || html !== lastRender) {
    rowsEl.innerHTML = html;
    lastRender = html;
    window.__fleet.renders += 1;
  }
  emptyEl.hidden = shown.length > 0 || engines.length === 0;
  const counts = { critical: 0, warning: 0, healthy: 0, unknown: 0 };
  for (const e of engines) counts[e.status in counts ? e.status : "unknown"] += 1;
  summaryEl.innerHTML = `<strong>${engines.length}</strong> engines · ` +
    `<span class="count count-critical">${counts.critical} critical</span> · ` +
    `<span class="count count-warning">${counts.warning} warning</span> · ` +
    `<span class="count count-healthy">${counts.healthy} healthy</span>` +
    (counts.unknown ? ` · ${counts.unknown} without prediction` : "") +
    (shown.length !== engines.length ? ` — showing ${shown.length}` : "");
  window.__fleet.renderMs = performance.now() - t0;
  window.__fleet.rows = shown.length;
}

async function load() {
  const t0 = performance.now();
  const data = await api("/api/v1/engines?limit=100000");
  engines = listOf(data, "engines").map((raw) => {
    const e = engineView(raw);
    const d = parseTime(e.updated);
    e.t = d ? d.getTime() : null;
    return e;
  });
  window.__fleet.fetchMs = performance.now() - t0;
  render();
  if (window.__fleet.renders === 1) performance.mark("fleet-first-render");
}

if (requireKey()) {
  restoreFilters();
  form.addEventListener("submit", (ev) => ev.preventDefault());
  for (const el of [q, statusSel, sortSel]) {
    el.addEventListener(el === q ? "input" : "change", () => {
      saveFilters();
      render();
    });
  }
  poll(load);
}
