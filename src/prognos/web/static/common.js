// Shared by every dashboard page: the API key session, fetch with Bearer auth, polling,
// formatting, and the alert table (used by the alerts page and the engine page).

const KEY = "prognos.apiKey";
const body = document.body;
export const config = {
  warningRul: Number(body.dataset.warningRul),
  criticalRul: Number(body.dataset.criticalRul),
  alertWarningRul: Number(body.dataset.alertWarningRul),
  alertCriticalRul: Number(body.dataset.alertCriticalRul),
  pollMs: Number(body.dataset.pollMs) || 3000,
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  location.assign("/ui/signin");
}

function toSignIn() {
  const next = location.pathname + location.search;
  location.assign("/ui/signin?next=" + encodeURIComponent(next));
}

/** A page that shows data needs a key: without one, go and sign in (and come back). */
export function requireKey() {
  if (!apiKey()) {
    toSignIn();
    return false;
  }
  document.getElementById("signout")?.addEventListener("click", signOut);
  return true;
}

function errorText(status, payload) {
  // FastAPI-style {"detail": "..."} or {"detail": [{"loc":..., "msg":...}]} or {"error": {...}}.
  const d = payload && (payload.detail ?? payload.error ?? payload.message);
  if (typeof d === "string") return d;
  if (Array.isArray(d) && d.length) return d.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
  if (d && typeof d === "object") return d.message || d.detail || JSON.stringify(d);
  return `HTTP ${status}`;
}

/** fetch a JSON API path with the session's key; 401 sends the visitor back to sign in. */
export async function api(path, { method = "GET", body: payload, key = apiKey(), signIn = true } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = "Bearer " + key;
  if (payload !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
    cache: "no-store",
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && signIn) {
      sessionStorage.removeItem(KEY);
      toSignIn();
    }
    let msg = errorText(res.status, data);
    if (res.status === 403) msg = "Your API key's role may not do this (" + msg + ").";
    throw new ApiError(res.status, msg);
  }
  return data;
}

/** Lists come bare or wrapped ({"engines": [...]}, {"items": [...]}); return the array. */
export function listOf(data, ...names) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== "object") return [];
  for (const n of [...names, "items", "data", "results"]) if (Array.isArray(data[n])) return data[n];
  return [];
}

export function pick(obj, ...names) {
  if (!obj) return undefined;
  for (const n of names) if (obj[n] !== undefined && obj[n] !== null) return obj[n];
  return undefined;
}

/** One engine's row, whatever nesting the API uses for its latest prediction. */
export function engineView(e) {
  const p = pick(e, "latest_prediction", "prediction", "latest") || {};
  const rul = pick(e, "rul", "predicted_rul") ?? pick(p, "rul", "predicted_rul");
  const lower = numOrNull(pick(e, "lower", "rul_lower") ?? pick(p, "lower", "rul_lower"));
  // The API's status wins; the fallback applies the same rule (the interval's lower bound).
  const status = pick(e, "status") ?? pick(p, "status") ?? (rul === undefined ? "unknown" : statusOf(lower ?? rul));
  return {
    id: String(pick(e, "engine_id", "id")),
    status: String(status),
    rul: rul === undefined ? null : Number(rul),
    lower,
    upper: numOrNull(pick(e, "upper", "rul_upper") ?? pick(p, "upper", "rul_upper")),
    lastCycle: numOrNull(pick(e, "last_cycle") ?? pick(p, "last_cycle", "cycle")),
    updated: pick(e, "last_update", "updated_at", "last_seen", "last_reading_at") ?? pick(p, "created_at", "timestamp"),
    model: pick(e, "model_version") ?? pick(p, "model_version"),
    confidence: numOrNull(pick(e, "confidence_level", "confidence") ?? pick(p, "confidence_level", "confidence")),
    tags: pick(e, "tags") || {},
  };
}

function numOrNull(v) {
  return v === undefined || v === null || v === "" ? null : Number(v);
}

/** The one status rule (prognos.status): judged on the interval's lower bound (cycles). */
export function statusOf(lower) {
  if (lower < config.criticalRul) return "critical";
  if (lower < config.warningRul) return "warning";
  return "healthy";
}

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
}

export function fmt(v, digits = 1) {
  return v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits);
}

export function parseTime(t) {
  if (t === undefined || t === null) return null;
  if (typeof t === "number") return new Date(t < 1e12 ? t * 1000 : t);
  // Naive ISO strings from the API are UTC.
  const s = /[zZ]|[+-]\d\d:?\d\d$/.test(t) ? t : t + "Z";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function ago(t) {
  const d = parseTime(t);
  if (!d) return "–";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return d.toISOString().slice(0, 10);
}

export function isoOf(t) {
  const d = parseTime(t);
  return d ? d.toISOString() : "";
}

const STATUS_LABEL = { healthy: "healthy", warning: "warning", critical: "critical", unknown: "no prediction" };
export function badge(status) {
  const s = STATUS_LABEL[status] ? status : "unknown";
  return `<span class="badge badge-${s}">${esc(STATUS_LABEL[status] || status)}</span>`;
}

export function showBanner(text) {
  const el = document.getElementById("banner");
  if (!el) return;
  el.textContent = text || "";
  el.hidden = !text;
}

/**
 * Run ``fn`` now and then every ``config.pollMs`` after each run finishes (never overlapping),
 * paused while the tab is hidden. Reports freshness in the header's live region.
 */
export function poll(fn) {
  const live = document.getElementById("live");
  let timer = null;
  let running = false;
  let stopped = false; // stop(): the page has nothing left to poll for (e.g. its engine does not exist)
  let again = false; // a refresh asked for while a poll was in flight (e.g. right after a button)
  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
      showBanner("");
      if (live && !stopped) {
        live.textContent = "live · " + new Date().toLocaleTimeString();
        live.classList.remove("live-error");
      }
    } catch (err) {
      if (live) {
        // An answer with an error status means the server is up; only a failed fetch is "offline".
        live.textContent = err instanceof ApiError ? "error" : "offline";
        live.classList.add("live-error");
      }
      showBanner(err instanceof ApiError ? err.message : "Cannot reach the server: " + err.message);
    } finally {
      running = false;
      if (again) {
        again = false;
        tick();
      } else if (!document.hidden && !stopped) {
        timer = setTimeout(tick, config.pollMs);
      }
    }
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) tick();
    else clearTimeout(timer);
  });
  tick();
  return {
    refresh: tick,
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (live) live.textContent = "stopped";
    },
  };
}

/**
 * A data table whose cells carry their column's header as ``data-label``, so at phone width (one
 * card per row, app.css) every value keeps its name. The first cell of a row is its header cell.
 */
export function labelledTable(caption, head, rows, { numeric = () => true } = {}) {
  if (!rows.length) return "";
  const cell = (c, i) => (i
    ? `<td${numeric(i) ? ' class="num"' : ""} data-label="${esc(head[i])}">${esc(c)}</td>`
    : `<th scope="row" data-label="${esc(head[0])}">${esc(c)}</th>`);
  return `<div class="table-wrap"><table class="data"><caption class="visually-hidden">${esc(caption)}</caption>
    <thead><tr>${head.map((h, i) => `<th scope="col"${i && numeric(i) ? ' class="num"' : ""}>${esc(h)}</th>`).join("")}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("")}</tbody></table></div>`;
}

/** A PHM08 score with its context: it sums a penalty per prediction, so it grows with their number. */
export function scoreText(score, n) {
  if (score === null || score === undefined || Number.isNaN(Number(score))) return "–";
  const total = Math.abs(score) >= 1000 ? Math.round(score).toLocaleString("en-US") : fmt(score, 1);
  return n ? `${total} (${fmt(score / n, 2)} per prediction)` : total;
}

/** One alert, whatever field names the API uses for its times. */
export function alertView(a) {
  return {
    id: pick(a, "id", "alert_id"),
    engine: String(pick(a, "engine_id") ?? ""),
    // An alert on a model version (e.g. drift) has no engine: it names the version instead.
    model: a.target_kind === "model" ? String(pick(a, "model_version") ?? "") : null,
    kind: pick(a, "kind", "type") ?? "",
    severity: pick(a, "severity") ?? "",
    status: pick(a, "status") ?? "",
    message: pick(a, "message", "detail", "description") ?? "",
    opened: pick(a, "opened_at", "created_at", "raised_at"),
    changed: pick(a, "resolved_at", "acknowledged_at", "updated_at"),
  };
}

/** Alert kinds in words (the API's filter values are the keys). */
export const KIND_LABEL = {
  rul_low: "RUL low", stuck_sensor: "stuck sensor", missing_cycles: "missing cycles", out_of_range: "out of range",
  missing_sensor: "missing sensor", drift: "model input drift",
};

/** The alert table's HTML; buttons carry data-action and data-id for ``bindAlertActions``. */
export function alertTable(alerts, { showEngine = true } = {}) {
  if (!alerts.length) return '<p class="empty">No alerts.</p>';
  const rows = alerts.map((raw) => {
    const a = alertView(raw);
    const actions = [];
    if (a.status === "open") {
      actions.push(`<button type="button" class="btn" data-action="acknowledge" data-id="${esc(a.id)}"
        aria-label="Acknowledge alert ${esc(a.id)} on ${a.model !== null ? "model" : "engine"} ${esc(a.model ?? a.engine)}">Acknowledge</button>`);
    }
    if (a.status === "open" || a.status === "acknowledged") {
      actions.push(`<button type="button" class="btn" data-action="resolve" data-id="${esc(a.id)}"
        aria-label="Resolve alert ${esc(a.id)} on ${a.model !== null ? "model" : "engine"} ${esc(a.model ?? a.engine)}">Resolve</button>`);
    }
    return `<tr data-alert-id="${esc(a.id)}">
      <td data-label="Alert">#${esc(a.id)}</td>
      ${showEngine ? `<td data-label="Engine">${a.model !== null
        ? `<a href="/ui/models" title="an alert on the model version">model ${esc(a.model)}</a>`
        : `<a href="/ui/engines/${encodeURIComponent(a.engine)}">${esc(a.engine)}</a>`}</td>` : ""}
      <td data-label="Kind"><div>${esc(KIND_LABEL[a.kind] ?? a.kind)}${a.message ? `<div class="sub">${esc(a.message)}</div>` : ""}</div></td>
      <td data-label="Severity"><span class="sev sev-${esc(a.severity)}">${esc(a.severity)}</span></td>
      <td data-label="Status" class="alert-status">${esc(a.status)}</td>
      <td data-label="Opened"><time datetime="${esc(isoOf(a.opened))}" title="${esc(isoOf(a.opened))}">${esc(ago(a.opened))}</time></td>
      <td data-label="Actions" class="actions">${actions.join(" ") || '<span class="muted">–</span>'}</td>
    </tr>`;
  });
  return `<div class="table-wrap"><table class="data alerts">
    <caption class="visually-hidden">Alerts</caption>
    <thead><tr><th scope="col">Alert</th>${showEngine ? '<th scope="col">Engine</th>' : ""}<th scope="col">Kind</th>
    <th scope="col">Severity</th><th scope="col">Status</th><th scope="col">Opened</th><th scope="col">Actions</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table></div>`;
}

/** Clicks on acknowledge/resolve buttons inside ``container`` call the API, then ``after()``. */
export function bindAlertActions(container, msgEl, after) {
  container.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const { action, id } = btn.dataset;
    btn.disabled = true;
    msgEl.textContent = "";
    try {
      await api(`/api/v1/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      msgEl.textContent = `Alert #${id} ${action === "acknowledge" ? "acknowledged" : "resolved"}.`;
      await after();
    } catch (err) {
      msgEl.textContent = err.message;
      btn.disabled = false;
    }
  });
}
