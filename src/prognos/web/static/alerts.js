// Alerts: filter by status / severity / kind / engine (the API's own filters); acknowledge and resolve
// (operator keys).
import { alertTable, alertView, api, bindAlertActions, listOf, poll, requireKey } from "./common.js";

const listEl = document.getElementById("alerts-list");
const msgEl = document.getElementById("alerts-msg");
const summaryEl = document.getElementById("alerts-summary");
const statusSel = document.getElementById("a-status");
const sevSel = document.getElementById("a-severity");
const kindSel = document.getElementById("a-kind");
const engineIn = document.getElementById("a-engine");
let lastKey = "";

function restore() {
  const p = new URLSearchParams(location.search);
  if (p.get("status") !== null) statusSel.value = p.get("status");
  if (p.get("severity") !== null) sevSel.value = p.get("severity");
  if (p.get("kind") !== null) kindSel.value = p.get("kind");
  engineIn.value = p.get("engine_id") || "";
}

function save() {
  const p = new URLSearchParams();
  if (statusSel.value !== "active") p.set("status", statusSel.value);
  if (sevSel.value) p.set("severity", sevSel.value);
  if (kindSel.value) p.set("kind", kindSel.value);
  if (engineIn.value.trim()) p.set("engine_id", engineIn.value.trim());
  const s = p.toString();
  history.replaceState(null, "", s ? "?" + s : location.pathname);
}

async function load() {
  const p = new URLSearchParams();
  // "active" = open or acknowledged (the API takes a comma-separated list).
  if (statusSel.value) p.set("status", statusSel.value === "active" ? "open,acknowledged" : statusSel.value);
  if (sevSel.value) p.set("severity", sevSel.value);
  if (kindSel.value) p.set("kind", kindSel.value);
  if (engineIn.value.trim()) p.set("engine_id", engineIn.value.trim());
  p.set("limit", "1000");
  const data = await api("/api/v1/alerts?" + p);
  const alerts = listOf(data, "alerts");
  const key = JSON.stringify(alerts);
  if (key !== lastKey) {
    lastKey = key;
    listEl.innerHTML = alertTable(alerts);
    showMemory(listEl, alerts);
  }
  const open = alerts.filter((a) => alertView(a).status === "open").length;
  const total = Number(data && data.total) || alerts.length;
  const summary = `${total} matching${total > alerts.length ? ` (newest ${alerts.length} shown)` : ""} · ${open} open`;
  if (summaryEl.textContent !== summary) summaryEl.textContent = summary; // a live region: only real changes
}

/**
 * An alert's memory in its row: the peak severity beside the current one (easing never lowers it)
 * and its transitions (event, severity, cycle, time, reason) in a disclosure under the kind.
 */
function showMemory(container, alerts) {
  for (const a of alerts) {
    const row = container.querySelector(`tr[data-alert-id="${CSS.escape(String(a.id))}"]`);
    if (!row) continue;
    const peak = a.peak_severity || a.severity;
    const sevCell = row.querySelector('td[data-label="Severity"]');
    if (sevCell && peak) {
      const el = document.createElement("div");
      el.className = "sub alert-peak";
      el.append("peak ");
      const badge = document.createElement("span");
      badge.className = `sev sev-${peak}`;
      badge.textContent = peak;
      el.append(badge);
      sevCell.append(el);
    }
    const steps = Array.isArray(a.transitions) ? a.transitions : [];
    const kindCell = row.querySelector('td[data-label="Kind"] > div') || row.querySelector('td[data-label="Kind"]');
    if (!kindCell || !steps.length) continue;
    const details = document.createElement("details");
    details.className = "alert-transitions";
    const summary = document.createElement("summary");
    summary.textContent = `${steps.length} transition${steps.length === 1 ? "" : "s"}`;
    const list = document.createElement("ol");
    for (const t of steps) {
      const li = document.createElement("li");
      li.dataset.event = t.event || "";
      const when = t.cycle !== null && t.cycle !== undefined ? ` at cycle ${t.cycle}` : "";
      li.textContent = `${t.event} (${t.severity})${when}, ${t.at || ""}${t.reason ? `: ${t.reason}` : ""}`;
      list.append(li);
    }
    details.append(summary, list);
    kindCell.append(details);
  }
}

if (requireKey()) {
  restore();
  const p = poll(load);
  document.getElementById("alert-filters").addEventListener("submit", (ev) => ev.preventDefault());
  let typing = null;
  for (const el of [statusSel, sevSel, kindSel, engineIn]) {
    el.addEventListener(el === engineIn ? "input" : "change", () => {
      save();
      // One request once typing pauses, not one per keystroke.
      clearTimeout(typing);
      typing = setTimeout(() => p.refresh(), el === engineIn ? 300 : 0);
    });
  }
  bindAlertActions(listEl, msgEl, () => p.refresh());
}
