// Models: the bundle the server has loaded (GET /api/v1/models -> {bundle, manifest}), its
// training facts and validation metrics.
import { alertTable, api, bindAlertActions, esc, listOf, pick, poll, requireKey, scoreText } from "./common.js";

const el = document.getElementById("models");
const alertsEl = document.getElementById("model-alerts");
let lastKey = "";

// Every metric a bundle records, in words; a key not listed here is still shown in words, never raw.
const METRIC_LABEL = {
  rmse: "RMSE (cycles)", mae: "MAE (cycles)", score: "PHM08 score (total)", coverage: "interval coverage",
  mean_interval_width: "mean interval width (cycles)", n_engines: "engines validated",
  n_windows: "windows validated (one prediction each)",
  rmse_uncapped: "RMSE, uncapped truth (cycles)", score_uncapped: "PHM08 score, uncapped truth (total)",
  coverage_uncapped: "interval coverage, uncapped truth",
  rmse_before_age_correction: "RMSE without the age correction (cycles)",
  confidence_level: "nominal interval coverage",
};
const SERVED = { student: "one distilled network (student)", ensemble: "the ensemble" };

function label(key) {
  return METRIC_LABEL[key] || key.replace(/_/g, " ");
}

function value(v) {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(0) : String(Number(v.toPrecision(4)));
  }
  if (Array.isArray(v)) return v.join(", ");
  if (v && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function facts(m) {
  const model = m.model || {};
  const cal = m.calibration || {};
  const rows = [
    ["Version", m.version], ["Dataset", m.dataset], ["Created", m.created_at],
    ["Network", model.name ?? model.type], ["Served", SERVED[model.served] ?? model.served],
    ["Ensemble members", model.members],
    ["Window (cycles)", m.window], ["RUL cap (cycles)", m.rul_cap],
    ["Interval", cal.level !== undefined ? `${Math.round(cal.level * 100)} % — ${cal.method ?? ""}` : undefined],
    ["Training time (s)", m.training_seconds], ["Sensors used", m.input_fields],
  ];
  return rows.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${esc(value(v))}</dd></div>`).join("");
}

function card(m) {
  const metrics = pick(m, "validation_metrics", "metrics") || {};
  // Bundles trained before engines and windows were counted apart stored the window count as
  // n_engines (11416 "engines" for 60): show such a count once, as windows.
  const mislabelled = metrics.n_windows !== undefined && metrics.n_engines === metrics.n_windows;
  // The PHM08 score sums a penalty per prediction: shown with its mean per prediction, so a score over
  // thousands of training windows is not read against a benchmark over 100 test engines.
  const n = metrics.n_windows ?? metrics.n_engines;
  const shown = (k, v) => (k.startsWith("score") ? scoreText(v, n) : value(v));
  const rows = Object.entries(metrics).filter(([k, v]) => typeof v === "number" && !(mislabelled && k === "n_engines"))
    .map(([k, v]) => `<tr><th scope="row">${esc(label(k))}</th><td class="num">${esc(shown(k, v))}</td></tr>`);
  const note = typeof metrics.note === "string" ? `<p class="muted">${esc(metrics.note)}</p>` : "";
  return `<section class="card" aria-labelledby="model-title"><h2 id="model-title">Loaded model
    <span class="badge badge-healthy">serving</span></h2>
    <dl class="facts">${facts(m)}</dl>
    <h3>Validation metrics</h3>${note}
    ${rows.length ? `<div class="table-wrap"><table class="data metrics"><caption class="visually-hidden">Validation metrics</caption>
    <thead><tr><th scope="col">metric</th><th scope="col" class="num">value</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>` : '<p class="empty">No metrics recorded.</p>'}
    ${importanceHtml(m.explanations)}</section>`;
}

// ---- Global importance per channel (manifest "explanations", written at training time): each
// channel's mean |contribution| to the RUL, in cycles, over validation windows.
function importanceHtml(g) {
  if (!g || !Array.isArray(g.channels) || !g.channels.length) {
    return `<h3>Global importance per channel</h3><p class="empty">This bundle carries no global importance
      (trained before explanations); predictions are still explained on request.</p>`;
  }
  const max = Math.max(0, ...g.channels.map((c) => c.mean_abs_contribution));
  const rows = g.channels.map((c) => {
    const w = max > 0 ? Math.max(1, Math.round((c.mean_abs_contribution / max) * 100)) : 0;
    return `<tr data-field="${esc(c.field)}"><th scope="row" data-label="Channel">${esc(c.unit ? `${c.name} (${c.unit})` : c.name)}
      <span class="muted">${esc(c.field)}</span></th><td class="num" data-label="Mean |cycles|">${esc(value(c.mean_abs_contribution))}</td>
      <td class="num" data-label="Mean cycles">${esc(value(c.mean_contribution))}</td>
      <td class="bar" data-label="Importance"><svg class="bar-svg" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
      <rect class="importance" width="${w}" height="10"/></svg></td></tr>`;
  });
  return `<h3>Global importance per channel</h3>
    <p class="muted">Mean |contribution| to the RUL (cycles) over ${esc(g.source)}, by ${esc(g.method)}; the mean
    signed contribution says which way the channel usually pulls (negative: towards failure).</p>
    <div class="table-wrap"><table class="data importance" id="global-importance">
    <caption class="visually-hidden">Global importance per channel</caption>
    <thead><tr><th scope="col">channel</th><th scope="col" class="num">mean |cycles|</th>
    <th scope="col" class="num">mean cycles</th><th scope="col">importance</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

async function loadAlerts() {
  if (!alertsEl) return;
  const page = await api("/api/v1/alerts?target_kind=model&status=open,acknowledged");
  alertsEl.innerHTML = alertTable(listOf(page, "items"));
}

async function load() {
  await loadAlerts();
  const data = await api("/api/v1/models");
  let models = listOf(data, "models");
  if (!models.length && data && typeof data === "object") {
    models = [data.manifest ?? data];  // data.bundle is only the folder's name: the version says which
  }
  const key = JSON.stringify(models);
  if (key === lastKey) return;
  lastKey = key;
  el.innerHTML = models.map(card).join("") || '<p class="empty">No model is loaded.</p>';
}

if (alertsEl) bindAlertActions(alertsEl, document.getElementById("model-alerts-msg"), loadAlerts);
if (requireKey()) poll(load);
