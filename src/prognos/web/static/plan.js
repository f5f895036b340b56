// Maintenance plan: GET /api/v1/plan?horizon=N (the same function as `prognos plan`), polled;
// the CSV button downloads the API's CSV for the horizon shown.
import { ago, api, apiKey, badge, esc, fmt, isoOf, poll, requireKey, showBanner } from "./common.js";

const rowsEl = document.getElementById("plan-rows");
const tableEl = document.getElementById("plan-table");
const emptyEl = document.getElementById("plan-empty");
const summaryEl = document.getElementById("plan-summary");
const msgEl = document.getElementById("plan-msg");
const horizonIn = document.getElementById("horizon");
const csvBtn = document.getElementById("plan-csv");
let lastRender = "";

function horizon() {
  const n = Number.parseInt(horizonIn.value, 10);
  return Number.isFinite(n) && n >= 0 && n <= 10000 ? n : null;
}

function restore() {
  const h = new URLSearchParams(location.search).get("horizon");
  if (h !== null && /^\d+$/.test(h)) horizonIn.value = h;
}

function save() {
  const h = horizon();
  history.replaceState(null, "", h === null || h === 30 ? location.pathname : "?horizon=" + h);
}

function quality(kinds) {
  if (!kinds.length) return '<span class="muted">ok</span>';
  return kinds.map((k) => `<span class="badge badge-warning">${esc(k.replace(/_/g, " "))}</span>`).join(" ");
}

function rowHtml(item, rank) {
  const href = "/ui/engines/" + encodeURIComponent(item.engine_id);
  const p = Number(item.probability);
  return `<tr class="row-${esc(item.status)}" data-id="${esc(item.engine_id)}">` +
    `<td class="num" data-label="#">${rank}</td>` +
    `<th scope="row" data-label="Engine"><a href="${href}">${esc(item.engine_id)}</a></th>` +
    `<td class="num" data-label="Due in">${item.due_in <= 0 ? "now" : fmt(item.due_in, 0)}</td>` +
    `<td data-label="P(critical)"><meter min="0" max="1" low="0.5" high="0.8" optimum="0" value="${p}"></meter> ` +
    `<span class="num">${Math.round(p * 100)}%</span></td>` +
    `<td class="num" data-label="RUL">${fmt(item.rul)}</td>` +
    `<td class="num" data-label="Interval">${fmt(item.lower)} – ${fmt(item.upper)}</td>` +
    `<td data-label="Status">${badge(item.status)}</td>` +
    `<td data-label="Data quality">${quality(item.data_quality || [])}</td>` +
    `<td data-label="Last update"><time datetime="${isoOf(item.last_update)}">${ago(item.last_update)}</time></td></tr>`;
}

async function load() {
  const h = horizon();
  if (h === null) {
    msgEl.textContent = "The horizon is a whole number of cycles from 0 to 10000.";
    return;
  }
  const plan = await api("/api/v1/plan?horizon=" + h);
  msgEl.textContent = "";
  const items = plan.items || [];
  const html = items.map((it, i) => rowHtml(it, i + 1)).join("");
  if (html !== lastRender) {
    rowsEl.innerHTML = html;
    lastRender = html;
  }
  tableEl.hidden = !items.length;
  emptyEl.hidden = items.length > 0;
  emptyEl.innerHTML = plan.engines_considered ? "No engine reaches the critical threshold within the horizon."
    : 'No engines yet: the <a href="/ui/fleet">Fleet page</a> says how to send readings.';
  const unscored = plan.engines_unscored ? ` · ${plan.engines_unscored} without a prediction` : "";
  const summary = `${items.length} of ${plan.engines_considered} engines due within ${plan.horizon} cycles${unscored}`;
  if (summaryEl.textContent !== summary) summaryEl.textContent = summary;
}

async function downloadCsv() {
  const h = horizon();
  if (h === null) return;
  csvBtn.disabled = true;
  try {
    const res = await fetch(`/api/v1/plan?horizon=${h}&format=csv`, {
      headers: { Authorization: "Bearer " + apiKey(), Accept: "text/csv" }, cache: "no-store",
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = `maintenance-plan-${h}.csv`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (err) {
    showBanner("The CSV could not be downloaded: " + err.message);
  } finally {
    csvBtn.disabled = false;
  }
}

if (requireKey()) {
  restore();
  const p = poll(load);
  document.getElementById("plan-form").addEventListener("submit", (ev) => ev.preventDefault());
  let typing = null;
  horizonIn.addEventListener("input", () => {
    save();
    clearTimeout(typing);
    typing = setTimeout(() => p.refresh(), 300);
  });
  csvBtn.addEventListener("click", downloadCsv);
}
