// Models page, lifecycle part: live performance against recorded failures (GET /api/v1/models/performance),
// the shadow canary (its candidate, agreement with production, realised errors) and input drift
// (GET /api/v1/models/drift). Loaded beside models.js by the models template.
import { api, apiKey, esc, fmt, labelledTable as table, poll, scoreText } from "./common.js";

const el = document.getElementById("lifecycle");
let lastKey = "";

function errorsRow(label, e) {
  return e ? [label, e.n, fmt(e.rmse, 2), scoreText(e.score, e.n), fmt(e.mean_error, 2), fmt(e.rmse_uncapped, 2)]
    : [label, 0, "-", "-", "-", "-"];
}

const ERR_HEAD = ["model version", "predictions", "RMSE (cycles)", "PHM08 score (total)", "mean error (cycles)", "RMSE, uncapped truth"];

function performance(perf) {
  const rows = (perf.versions || []).map((v) => errorsRow(v.model_version, v));
  const body = rows.length
    ? table("Live performance per model version", ERR_HEAD, rows)
    : '<p class="empty">No failures recorded yet. Record one with <code>POST /api/v1/engines/{id}/failure</code> or <code>prognos failure ID --cycle N</code>.</p>';
  return `<section class="card" aria-labelledby="perf-title"><h2 id="perf-title">Live performance (ground truth)</h2>
    <p class="muted">${esc(perf.n_failures ?? 0)} recorded failure(s); errors against the true RUL capped at ${esc(perf.rul_cap)} cycles, and uncapped.</p>
    ${body}</section>`;
}

function canary(c, shadow) {
  if (!c || !c.enabled) {
    return `<section class="card" aria-labelledby="canary-title"><h2 id="canary-title">Shadow canary</h2>
      <p class="empty">Off. Set <code>PROGNOS_CANARY_FRACTION</code> (e.g. 0.1) to score that share of traffic with the registry's candidate.</p></section>`;
  }
  const cand = c.candidate ? `${c.candidate.label} (${c.candidate.model_version})` : "none (no candidate registered)";
  const pairs = (c.pairs || []).map((p) => [`${p.production_version} → ${p.candidate_version}`, p.n, fmt(p.mean_abs_diff, 2),
    fmt(p.max_abs_diff, 1), `${fmt(100 * p.agreement, 1)} %`, `${fmt(100 * p.status_agreement, 1)} %`]);
  const judged = (shadow || []).filter((s) => s.n_evaluated).flatMap((s) => [
    errorsRow(`production ${s.production_version}`, s.production), errorsRow(`candidate ${s.candidate_version}`, s.candidate)]);
  return `<section class="card" aria-labelledby="canary-title"><h2 id="canary-title">Shadow canary</h2>
    <dl class="facts"><div><dt>Candidate</dt><dd>${esc(cand)}</dd></div><div><dt>Traffic shadowed</dt><dd>${esc(fmt(100 * c.fraction, 0))} %</dd></div>
    <div><dt>Scored / dropped</dt><dd>${esc(c.scored)} / ${esc(c.dropped)}</dd></div></dl>
    <h3>Agreement with production</h3>
    ${table("Shadow agreement", ["versions", "requests", "mean |diff| (cycles)", "max |diff|", `within ${c.tolerance_cycles} cycles`, "same status"], pairs) || '<p class="empty">No shadow predictions yet.</p>'}
    <h3>Realised errors on the same requests</h3>
    ${table("Shadow realised errors", ERR_HEAD, judged) || '<p class="empty">None of the shadowed engines has a recorded failure yet.</p>'}</section>`;
}

function drift(d) {
  const cls = { drift: "badge-critical", ok: "badge-healthy" }[d.status] || "badge-unknown";
  const feats = (d.features || []).map((q) => [q.name, q.n, fmt(q.psi, 3), fmt(q.ks, 3), q.drifted ? "yes" : ""]);
  const pred = d.prediction ? [[`predicted RUL`, d.prediction.n, fmt(d.prediction.psi, 3), fmt(d.prediction.ks, 3), d.prediction.drifted ? "yes" : ""]] : [];
  // Evidence: the reference is the training data at the sample's own life stages (engine cycles).
  const stages = (d.stages || []).map((s) => [s.stage, s.n, `${fmt(100 * s.share, 1)} %`, s.reference_n, s.n_drifted ?? "-", s.max_ks == null ? "-" : fmt(s.max_ks, 3)]);
  const engines = d.n_engines != null ? ` from ${esc(d.n_engines)} engines` : "";
  return `<section class="card" aria-labelledby="drift-title"><h2 id="drift-title">Input drift <span class="badge ${cls}">${esc(d.status)}</span></h2>
    <p>${esc(d.message || "")}${d.n_samples !== undefined ? ` — ${esc(d.n_samples)} captured requests${engines}` : ""}</p>
    ${table("Drift per feature", ["feature", "samples", "PSI", "KS", "drifted"], [...feats, ...pred])}
    ${table("Samples per life stage", ["life stage", "samples", "share", "training rows", "features drifted within", "max KS within"], stages)}</section>`;
}

async function load() {
  const [perf, d] = await Promise.all([api("/api/v1/models/performance"), api("/api/v1/models/drift")]);
  const key = JSON.stringify([perf, d]);
  if (key === lastKey) return;
  lastKey = key;
  el.innerHTML = performance(perf) + canary(perf.canary, perf.shadow) + drift(d);
}

if (el && apiKey()) poll(load);
