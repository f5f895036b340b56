// Engine detail: current prediction, the RUL trajectory (interval band, warning/critical lines),
// the engine's alerts (acknowledge / resolve) and small multiples of its sensor trends.
import { lineChart } from "./charts.js";
import {
  ago, alertTable, api, ApiError, badge, bindAlertActions, config, engineView, fmt, isoOf, listOf, pick, poll,
  requireKey,
} from "./common.js";

const engineId = document.body.dataset.engineId;
const enc = encodeURIComponent(engineId);
const READINGS = 200; // how many recent readings the sensor trends show
const SENSORS = Array.from({ length: 21 }, (_, i) => `s${i + 1}`);
const alertsEl = document.getElementById("engine-alerts");
const alertsMsg = document.getElementById("engine-alerts-msg");
let lastKey = { rul: "", sensors: "", alerts: "" };
let lastData = null; // the latest answers, to redraw the charts at a new width without a fetch

// Charts are drawn at their on-screen width (px), so text keeps its size on a phone and a desktop.
function widthOf(el, fallback) {
  return Math.max(240, Math.round(el.clientWidth || fallback));
}

function setText(id, text, title) {
  const el = document.getElementById(id);
  el.textContent = text;
  if (title !== undefined) el.title = title;
}

function renderFacts(raw) {
  const e = engineView(raw);
  document.getElementById("engine-status").outerHTML = badge(e.status).replace("<span ", '<span id="engine-status" ');
  setText("f-rul", e.rul === null ? "–" : `${fmt(e.rul)} cycles`);
  setText("f-interval", e.lower === null ? "–"
    : `${fmt(e.lower)} – ${fmt(e.upper)}${e.confidence ? ` (${Math.round(e.confidence * 100)} %)` : ""}`);
  setText("f-cycle", fmt(e.lastCycle, 0));
  setText("f-updated", ago(e.updated), isoOf(e.updated));
  setText("f-model", e.model ?? "–");
  const tags = Object.entries(e.tags).map(([k, v]) => `${k}=${v}`).join(", ");
  setText("f-tags", tags || "–");
  if (e.confidence) document.getElementById("conf-label").textContent = `${Math.round(e.confidence * 100)} % prediction`;
}

function predPoint(p) {
  return {
    x: Number(pick(p, "last_cycle", "cycle")),
    rul: Number(pick(p, "rul", "predicted_rul")),
    lo: Number(pick(p, "lower", "rul_lower")),
    hi: Number(pick(p, "upper", "rul_upper")),
  };
}

function renderRul(preds) {
  const pts = preds.map(predPoint).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.rul)).sort((a, b) => a.x - b.x);
  const key = JSON.stringify(pts);
  if (key === lastKey.rul) return;
  lastKey.rul = key;
  const last = pts[pts.length - 1];
  const box = document.getElementById("rul-chart");
  const width = widthOf(box, 640);
  box.innerHTML = lineChart({
    width, height: Math.round(Math.min(340, Math.max(220, width * 0.42))),
    title: `Predicted RUL of engine ${engineId} by cycle`,
    desc: last ? `Latest: ${fmt(last.rul)} cycles (interval ${fmt(last.lo)} to ${fmt(last.hi)}) at cycle ${last.x}.` : "",
    series: [{ points: pts.map((p) => [p.x, p.rul]), cls: "rul", name: "RUL" }],
    band: pts.filter((p) => Number.isFinite(p.lo) && Number.isFinite(p.hi)).map((p) => [p.x, p.lo, p.hi]),
    hlines: [
      { y: config.alertWarningRul, cls: "warning", name: `warning ${config.alertWarningRul}` },
      { y: config.alertCriticalRul, cls: "critical", name: `critical ${config.alertCriticalRul}` },
    ],
    xLabel: "cycle", yLabel: "RUL (cycles)", yMin: 0,
  });
}

function readingValue(r, name) {
  const v = pick(r, name) ?? pick(pick(r, "sensors", "values", "measurements") || {}, name);
  return v === undefined ? NaN : Number(v);
}

function renderSensors(readings) {
  const rows = readings.slice().sort((a, b) => Number(a.cycle) - Number(b.cycle)).slice(-READINGS);
  const key = rows.length ? `${rows.length}:${rows[0].cycle}:${rows[rows.length - 1].cycle}` : "0";
  if (key === lastKey.sensors) return;
  lastKey.sensors = key;
  document.getElementById("n-readings").textContent = String(rows.length);
  const grid = document.getElementById("sensor-charts");
  // One column's width (px) as CSS laid the grid out (.chart-grid in app.css).
  const track = parseFloat(getComputedStyle(grid).gridTemplateColumns.split(" ")[0]);
  const miniWidth = Math.max(140, Math.floor((Number.isFinite(track) ? track : widthOf(grid, 600)) - 18));
  const charts = [];
  for (const s of SENSORS) {
    const pts = rows.map((r) => [Number(r.cycle), readingValue(r, s)]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length < 2) continue;
    const ys = pts.map((p) => p[1]);
    // Sensors NASA holds constant carry no trend; skip them rather than draw flat lines.
    if (Math.max(...ys) - Math.min(...ys) < 1e-9 * Math.max(1, Math.abs(ys[0]))) continue;
    charts.push(`<figure class="mini"><figcaption>${s} <span class="muted">${fmt(ys[ys.length - 1], 2)}</span></figcaption>
      ${lineChart({ series: [{ points: pts, cls: "sensor" }], width: miniWidth, height: 110, compact: true,
        title: `sensor ${s} by cycle` })}</figure>`);
  }
  grid.innerHTML = charts.join("") || '<p class="empty">No readings yet.</p>';
}

function renderAlerts(alerts) {
  const key = JSON.stringify(alerts);
  if (key === lastKey.alerts) return;
  lastKey.alerts = key;
  alertsEl.innerHTML = alertTable(alerts, { showEngine: false });
}

/** No such engine: say so instead of an empty skeleton, and stop asking (it would be 404 every poll). */
function notFound() {
  document.getElementById("engine-status").remove();
  for (const id of ["engine-facts", "engine-sections"]) document.getElementById(id).hidden = true;
  const msg = document.getElementById("engine-missing");
  msg.hidden = false;
  msg.focus();
}

async function load() {
  let engine;
  try {
    engine = await api(`/api/v1/engines/${enc}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      notFound();
      polling.stop();
      return;
    }
    throw err;
  }
  const [preds, readings, alerts] = await Promise.all([
    loadPredictions(),
    loadReadings(),
    api(`/api/v1/alerts?engine_id=${enc}`),
  ]);
  lastData = { preds: listOf(preds, "predictions"), readings };
  renderFacts(engine);
  renderRul(listOf(preds, "predictions"));
  renderSensors(readings);
  renderAlerts(listOf(alerts, "alerts"));
}

// Predictions come oldest first, at most 1,000 a page: when there are more, take the newest page.
const PREDICTIONS = 1000;
async function loadPredictions() {
  const first = await api(`/api/v1/engines/${enc}/predictions?limit=${PREDICTIONS}`);
  const total = Number(pick(first, "total")) || 0;
  if (total <= PREDICTIONS) return first;
  return api(`/api/v1/engines/${enc}/predictions?limit=${PREDICTIONS}&offset=${total - PREDICTIONS}`);
}

// The readings endpoint pages with limit/offset; ask for the newest page.
async function loadReadings() {
  const first = await api(`/api/v1/engines/${enc}/readings?limit=${READINGS}&order=desc`);
  const rows = listOf(first, "readings");
  const total = pick(first, "total", "count");
  if (total !== undefined && total > rows.length && !isDescending(rows)) {
    const page = await api(`/api/v1/engines/${enc}/readings?limit=${READINGS}&offset=${Math.max(0, total - READINGS)}`);
    return listOf(page, "readings");
  }
  return rows;
}

function isDescending(rows) {
  return rows.length > 1 && Number(rows[0].cycle) > Number(rows[rows.length - 1].cycle);
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (!lastData) return;
    lastKey.rul = lastKey.sensors = "";
    renderRul(lastData.preds);
    renderSensors(lastData.readings);
  }, 150);
});

let polling = null;
if (requireKey()) {
  polling = poll(load);
  bindAlertActions(alertsEl, alertsMsg, () => polling.refresh());
}
