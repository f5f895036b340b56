// Engine detail: current prediction, the RUL trajectory (interval band, warning/critical lines),
// the engine's alerts (acknowledge / resolve) and small multiples of its sensor trends.
import { lineChart } from "./charts.js";
import {
  ago, alertTable, api, ApiError, badge, bindAlertActions, config, engineView, esc, fmt, isoOf, listOf, pick, poll,
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
  const key = (rows.length ? `${rows.length}:${rows[0].cycle}:${rows[rows.length - 1].cycle}` : "0") + `|${explained.key}`;
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
    const driver = driverOf(s);
    charts.push(`<figure class="mini${driver ? " driver" : ""}" data-sensor="${s}"><figcaption>${s} <span class="muted">${fmt(ys[ys.length - 1], 2)}</span>${driverTag(driver)}</figcaption>
      ${lineChart({ series: [{ points: pts, cls: "sensor" }], width: miniWidth, height: 110, compact: true,
        title: `sensor ${s} by cycle`, highlight: driverHighlight(driver) })}</figure>`);
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
  await loadExplanation(engine);
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

// ---- Why this RUL: the channels driving the current prediction (GET /api/v1/engines/{id}?explain=true,
// asked once per new prediction), listed in #explanation and marked on their sensor charts.
const TOP_DRIVERS = 3;
let explained = { key: "", data: null }; // the explanation shown and the prediction (cycle, model) it explains

async function loadExplanation(engine) {
  const box = document.getElementById("explanation");
  const latest = pick(engine, "latest_prediction");
  if (!latest) {
    if (explained.key !== "none") box.innerHTML = '<p class="empty">No prediction yet: nothing to explain.</p>';
    explained = { key: "none", data: null };
    return;
  }
  const key = `${pick(latest, "cycle", "last_cycle")}:${pick(latest, "model_version")}`;
  if (key === explained.key) return;
  let data = null;
  try {
    const body = await api(`/api/v1/engines/${enc}?explain=true`);
    data = pick(pick(body, "latest_prediction") || {}, "explanation") || null;
  } catch (err) {
    // Only this panel says so (the rest of the page stands); the next poll asks again.
    explained = { key: "", data: null };
    box.innerHTML = `<p class="empty">The explanation is unavailable: ${esc(err.message)}</p>`;
    return;
  }
  explained = { key, data };
  box.innerHTML = data ? explanationHtml(data) : '<p class="empty">This prediction has no explanation.</p>';
}

function drivers() {
  return explained.data ? (explained.data.contributions || []).slice(0, TOP_DRIVERS) : [];
}

function driverOf(sensor) {
  const i = drivers().findIndex((c) => c.field === sensor);
  return i < 0 ? null : { ...drivers()[i], rank: i + 1 };
}

function channelName(c) {
  return c.unit ? `${c.name} (${c.unit})` : c.name;
}

function signed(v) {
  return `${v > 0 ? "+" : v < 0 ? "−" : ""}${fmt(Math.abs(v))}`;
}

function driverTag(d) {
  return d ? ` <span class="driver-tag">· ${esc(d.name)} · driver #${d.rank}, ${signed(d.contribution)} cycles</span>` : "";
}

/** The readings the prediction rests on, shaded on a driver's chart. */
function driverHighlight(d) {
  const e = explained.data;
  if (!d || !e || e.last_cycle === null || e.last_cycle === undefined) return null;
  const spans = e.spans || [];
  const from = e.since_cycle ?? (spans.length ? spans[0].first_cycle : null);
  if (from === null || from === undefined) return null;
  return { from, to: e.last_cycle, name: `${d.name}: the readings since cycle ${from} drive the RUL` };
}

function driverRows(list, max) {
  return list.map((c, i) => {
    const w = max > 0 ? Math.max(2, Math.round((Math.abs(c.contribution) / max) * 100)) : 0;
    return `<tr data-field="${esc(c.field)}"><td class="num" data-label="Rank">${i + 1}</td><th scope="row" data-label="Channel">${esc(channelName(c))}
      <span class="muted">${esc(c.field)}</span></th><td class="num" data-label="Cycles of RUL">${signed(c.contribution)}</td>
      <td class="bar" data-label="Effect">${barSvg(w, c.contribution < 0 ? "down" : "up")}</td></tr>`;
  }).join("");
}

/** A bar ``percent`` % wide (SVG attributes: the page's CSP allows no inline styles). */
function barSvg(percent, cls) {
  return `<svg class="bar-svg" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
    <rect class="${cls}" width="${percent}" height="10"/></svg>`;
}

function explanationHtml(e) {
  const all = e.contributions || [];
  const max = Math.max(0, ...all.map((c) => Math.abs(c.contribution)));
  const head = `<thead><tr><th scope="col" class="num">#</th><th scope="col">channel</th>
    <th scope="col" class="num">cycles of RUL</th><th scope="col">effect</th></tr></thead>`;
  const since = e.since_cycle !== null && e.since_cycle !== undefined
    ? `The readings since cycle ${e.since_cycle} (the last ${e.since_cycles_ago + 1} cycles) carry 80 % of the evidence.`
    : "";
  const sum = all.reduce((a, c) => a + c.contribution, 0);
  return `<p>The model predicts <strong>${fmt(e.model_rul)} cycles</strong> before its age correction; an engine reading
    its training averages would get ${fmt(e.baseline_rul)}. ${esc(since)}</p>
    <div class="table-wrap"><table class="data drivers" id="top-drivers"><caption class="visually-hidden">Channels driving the current RUL</caption>
    ${head}<tbody>${driverRows(all.slice(0, TOP_DRIVERS), max)}</tbody></table></div>
    <details><summary>All ${all.length} channels</summary><div class="table-wrap"><table class="data drivers">
    <caption class="visually-hidden">Every channel's contribution</caption>${head}<tbody>${driverRows(all, max)}</tbody></table></div></details>
    <p class="muted">Method: ${esc(e.method)}; baseline: ${esc(e.baseline)}. ${fmt(e.model_rul)} = ${fmt(e.baseline_rul)}
    (baseline) ${signed(sum)} (channels) ${signed(e.interaction)} (interaction: what channels do only together).</p>`;
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
