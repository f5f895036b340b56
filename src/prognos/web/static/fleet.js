// Fleet view: every engine with its RUL, interval, status and freshness. The whole fleet is
// fetched once per poll and sorted/filtered here, so typing in the search box costs no request.
//
// Large fleets are windowed: only the rows in and near the viewport are in the DOM (spacer rows
// keep the scroll height right; aria-rowcount/aria-rowindex tell assistive technology the true
// size), so rendering 1,000 or 10,000 engines costs about as much as rendering 60, and a poll
// that changes every "last update" cell re-renders a screenful, not the fleet.
import { ago, api, badge, engineView, esc, fmt, isoOf, listOf, parseTime, poll, requireKey } from "./common.js";

const table = document.getElementById("fleet-table");
const rowsEl = document.getElementById("fleet-rows");
const emptyEl = document.getElementById("fleet-empty");
const noneEl = document.getElementById("fleet-none"); // the fleet has no engine at all: how to add some
const summaryEl = document.getElementById("fleet-summary");
const form = document.getElementById("fleet-filters");
const q = document.getElementById("q");
const statusSel = document.getElementById("status");
const sortSel = document.getElementById("sort");

const RANK = { critical: 0, warning: 1, healthy: 2, unknown: 3 };
const WINDOW_FROM = 150; // fleets up to this many matching engines render every row
const OVERSCAN = 25; // rows rendered beyond each edge of the viewport
let engines = [];
let shown = []; // the engines matching the filters, in display order
let range = [0, 0]; // rendered slice of ``shown``
let rowHeight = 41; // px; measured from the rendered rows (cards are taller at phone width)
let lastRender = "";
// Timings the end-to-end test reads (ms): fetch+parse, and filtering+sorting+building the rows.
window.__fleet = { fetchMs: null, renderMs: null, rows: 0, domRows: 0, renders: 0 };

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

function nullsLast(x, y, dir) {
  if (x === null && y === null) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  return dir * (x - y);
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

function matches(e, text, status) {
  if (status && e.status !== status) return false;
  if (!text) return true;
  if (e.id.toLowerCase().includes(text)) return true;
  return Object.values(e.tags).some((v) => String(v).toLowerCase().includes(text));
}

function rowHtml(e, i) {
  const href = "/ui/engines/" + encodeURIComponent(e.id);
  const interval = e.lower === null ? "–" : `${fmt(e.lower)} – ${fmt(e.upper)}`;
  return `<tr class="row-${e.status}" aria-rowindex="${i + 2}" data-id="${esc(e.id)}">` +
    `<th scope="row" data-label="Engine"><a href="${href}">${esc(e.id)}</a></th>` +
    `<td data-label="Status">${badge(e.status)}</td><td class="num" data-label="RUL">${fmt(e.rul)}</td>` +
    `<td class="num" data-label="Interval">${interval}</td><td class="num" data-label="Last cycle">${fmt(e.lastCycle, 0)}</td>` +
    `<td data-label="Last update"><time datetime="${isoOf(e.updated)}">${ago(e.updated)}</time></td></tr>`;
}

const SPACER = '<tr class="spacer" aria-hidden="true"><td colspan="6"></td></tr>';

/** The slice of ``shown`` to render: all of it, or the viewport plus OVERSCAN rows each side. */
function wantedRange(overscan = OVERSCAN) {
  if (shown.length <= WINDOW_FROM) return [0, shown.length];
  const top = rowsEl.getBoundingClientRect().top; // px from the viewport's top edge (negative once scrolled past)
  const first = Math.max(0, Math.floor(-top / rowHeight) - overscan);
  const count = Math.ceil(window.innerHeight / rowHeight) + 2 * overscan;
  return [Math.min(first, Math.max(0, shown.length - count)), Math.min(shown.length, first + count)];
}

/** Put rows [a, b) of ``shown`` in the table, keeping keyboard focus on the same engine. */
function paintRows(force = false) {
  const [a, b] = wantedRange();
  let html = a > 0 ? SPACER : "";
  for (let i = a; i < b; i++) html += rowHtml(shown[i], i);
  if (b < shown.length) html += SPACER;
  range = [a, b];
  // Skip the DOM work when nothing visible changed (most polls on a quiet fleet).
  if (!force && html === lastRender) return;
  const focused = rowsEl.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.id : null;
  rowsEl.innerHTML = html;
  lastRender = html;
  window.__fleet.renders += 1;
  window.__fleet.domRows = b - a;
  sizeSpacers(a, b);
  window.__fleet.range = [a, b];
  window.__fleet.rowHeight = rowHeight;
  if (focused !== null && focused !== undefined) {
    const row = Array.from(rowsEl.rows).find((r) => r.dataset.id === focused);
    row?.querySelector("a")?.focus({ preventScroll: true });
  }
}

function sizeSpacers(a, b) {
  const real = rowsEl.querySelectorAll("tr:not(.spacer)");
  if (real.length >= 2) {
    const measured = (real[real.length - 1].offsetTop - real[0].offsetTop) / (real.length - 1);
    if (measured > 0) rowHeight = measured;
  }
  const spacers = rowsEl.querySelectorAll("tr.spacer > td");
  // Heights are set through the CSSOM: the page's CSP forbids inline style attributes.
  if (a > 0) spacers[0].style.height = `${a * rowHeight}px`;
  if (b < shown.length) spacers[spacers.length - 1].style.height = `${(shown.length - b) * rowHeight}px`;
}

// aria-sort on the header of the column the rows are sorted by (the Sort select drives it).
const SORT_COLUMN = { engine_id: 0, status: 1, rul: 2, last_update: 5 };
function markSortedColumn() {
  const key = sortSel.value.replace(/^-/, "");
  const dir = sortSel.value.startsWith("-") ? "descending" : "ascending";
  table.querySelectorAll("thead th").forEach((th, i) => {
    if (i === SORT_COLUMN[key]) th.setAttribute("aria-sort", key === "status" ? "other" : dir);
    else th.removeAttribute("aria-sort");
  });
}

function render() {
  const t0 = performance.now();
  const text = q.value.trim().toLowerCase();
  shown = engines.filter((e) => matches(e, text, statusSel.value)).sort(comparator(sortSel.value));
  table.setAttribute("aria-rowcount", String(shown.length + 1));
  paintRows();
  emptyEl.hidden = shown.length > 0 || engines.length === 0;
  noneEl.hidden = engines.length > 0;
  table.hidden = engines.length === 0;
  const counts = { critical: 0, warning: 0, healthy: 0, unknown: 0 };
  for (const e of engines) counts[e.status in counts ? e.status : "unknown"] += 1;
  const summary = `<strong>${engines.length}</strong> engines · ` +
    `<span class="count count-critical">${counts.critical} critical</span> · ` +
    `<span class="count count-warning">${counts.warning} warning</span> · ` +
    `<span class="count count-healthy">${counts.healthy} healthy</span>` +
    (counts.unknown ? ` · ${counts.unknown} without prediction` : "") +
    (shown.length !== engines.length ? ` — showing ${shown.length}` : "");
  // A live region: rewrite it only when it changes, or screen readers repeat it every poll.
  if (summaryEl.innerHTML !== summary) summaryEl.innerHTML = summary;
  markSortedColumn();
  window.__fleet.renderMs = performance.now() - t0;
  window.__fleet.rows = shown.length;
}

// Scrolling re-renders only when the viewport nears an edge of the rendered slice.
let scrollPending = false;
function onScroll() {
  if (scrollPending || shown.length <= WINDOW_FROM) return;
  scrollPending = true;
  requestAnimationFrame(() => {
    scrollPending = false;
    // Re-render while half the overscan is still in hand, so keyboard focus moving down the
    // rows (which scrolls the page) never reaches the last rendered row.
    const [a, b] = wantedRange(Math.floor(OVERSCAN / 2));
    if (a < range[0] || b > range[1]) paintRows();
  });
}

// The API pages its lists (at most PAGE items per request): follow the pages to the total.
const PAGE = 5000;
async function fetchAll(path) {
  const first = await api(`${path}?limit=${PAGE}`);
  const items = listOf(first, "engines");
  const total = Number(first && first.total) || items.length;
  const rest = [];
  for (let offset = items.length; offset < total && items.length > 0; offset += PAGE) {
    rest.push(api(`${path}?limit=${PAGE}&offset=${offset}`));
  }
  for (const page of await Promise.all(rest)) items.push(...listOf(page, "engines"));
  return items;
}

async function load() {
  const t0 = performance.now();
  engines = (await fetchAll("/api/v1/engines")).map((raw) => {
    const e = engineView(raw);
    const d = parseTime(e.updated);
    e.t = d ? d.getTime() : null;
    return e;
  });
  window.__fleet.fetchMs = performance.now() - t0;
  render();
  if (!rowsEl.dataset.loaded) {
    performance.mark("fleet-first-render");
    rowsEl.dataset.loaded = "1"; // lets tests wait for the first data without evaluating script
    // The frame after the rows went in: layout and paint of the table are done by then.
    requestAnimationFrame(() => setTimeout(() => {
      performance.mark("fleet-first-paint");
      rowsEl.dataset.painted = "1";
    }, 0));
  }
}

if (requireKey()) {
  for (const el of noneEl.querySelectorAll(".origin")) el.textContent = location.origin;
  restoreFilters();
  form.addEventListener("submit", (ev) => ev.preventDefault());
  for (const el of [q, statusSel, sortSel]) {
    el.addEventListener(el === q ? "input" : "change", () => {
      saveFilters();
      render();
    });
  }
  window.addEventListener("scroll", onScroll, { passive: true });
  window.addEventListener("resize", () => paintRows(true));
  poll(load);
}
