// Small hand-written SVG line charts (no chart library, nothing to download). The SVG uses a
// viewBox, so it scales with its container; colours come from CSS classes in app.css.
import { esc } from "./common.js";

/** About ``count`` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Tick labels with just enough decimals to tell neighbouring ticks ``step`` apart. */
function labeler(step) {
  let decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  while (decimals < 6 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6) decimals += 1;
  return (v) => (Math.abs(v) >= 1e5 ? `${(v / 1000).toFixed(0)}k` : v.toFixed(decimals));
}

function tickLabels(values) {
  const label = labeler(values.length > 1 ? values[1] - values[0] : Math.abs(values[0]) || 1);
  return values.map((v) => [v, label(v)]);
}

/**
 * An SVG line chart as a string.
 * series: [{points: [[x, y], ...], cls, name}], band: [[x, lo, hi], ...] (shaded),
 * hlines: [{y, cls, name}] (dashed horizontal reference lines, labelled at the right),
 * highlight: {from, to, name} (a shaded run of x values behind the lines, e.g. the cycles an explanation rests on).
 */
export function lineChart({ series = [], band = [], hlines = [], width = 640, height = 260, xLabel = "", yLabel = "",
  title = "", desc = "", yMin = null, compact = false, highlight = null }) {
  const m = compact ? { t: 8, r: 8, b: 22, l: 44 } : { t: 12, r: 74, b: 40, l: 56 };
  const xs = [], ys = [];
  for (const s of series) for (const [x, y] of s.points) { xs.push(x); ys.push(y); }
  for (const [x, lo, hi] of band) { xs.push(x); ys.push(lo, hi); }
  for (const h of hlines) ys.push(h.y);
  const titleTag = `<title>${esc(title)}</title>${desc ? `<desc>${esc(desc)}</desc>` : ""}`;
  if (!xs.length) {
    return `<svg class="chart-svg" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}: no data">
      ${titleTag}<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="axis-label">no data yet</text></svg>`;
  }
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = yMin ?? Math.min(...ys), y1 = Math.max(...ys);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.01 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05;
  if (yMin === null) y0 -= pad;
  y1 += pad;
  const W = width - m.l - m.r, H = height - m.t - m.b;
  const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * W;
  const sy = (y) => m.t + H - ((y - y0) / (y1 - y0)) * H;
  const f = (v) => v.toFixed(1);
  const parts = [];
  for (const [t, text] of tickLabels(ticks(y0, y1, compact ? 3 : 5))) {
    parts.push(`<line class="grid" x1="${m.l}" x2="${m.l + W}" y1="${f(sy(t))}" y2="${f(sy(t))}"/>`);
    parts.push(`<text class="tick" x="${m.l - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${text}</text>`);
  }
  for (const [t, text] of tickLabels(ticks(x0, x1, compact ? 3 : 6))) {
    parts.push(`<text class="tick" x="${f(sx(t))}" y="${m.t + H + 16}" text-anchor="middle">${text}</text>`);
  }
  if (highlight) parts.push(highlightRect(highlight, sx, m.t, H));
  if (band.length > 1) {
    const upper = band.map(([x, , hi]) => `${f(sx(x))},${f(sy(hi))}`);
    const lower = band.slice().reverse().map(([x, lo]) => `${f(sx(x))},${f(sy(lo))}`);
    parts.push(`<polygon class="band" points="${upper.concat(lower).join(" ")}"/>`);
  }
  for (const h of hlines) {
    if (h.y < y0 || h.y > y1) continue;
    parts.push(`<line class="hline ${esc(h.cls || "")}" x1="${m.l}" x2="${m.l + W}" y1="${f(sy(h.y))}" y2="${f(sy(h.y))}"/>`);
    if (!compact) parts.push(`<text class="hline-label ${esc(h.cls || "")}" x="${m.l + W + 4}" y="${f(sy(h.y) + 4)}">${esc(h.name)}</text>`);
  }
  for (const s of series) {
    if (!s.points.length) continue;
    const d = s.points.map(([x, y], i) => `${i ? "L" : "M"}${f(sx(x))},${f(sy(y))}`).join("");
    parts.push(`<path class="line ${esc(s.cls || "")}" d="${d}"/>`);
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      parts.push(`<circle class="dot ${esc(s.cls || "")}" cx="${f(sx(x))}" cy="${f(sy(y))}" r="3"/>`);
    }
  }
  parts.push(`<line class="axis" x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + H}"/>`);
  parts.push(`<line class="axis" x1="${m.l}" x2="${m.l + W}" y1="${m.t + H}" y2="${m.t + H}"/>`);
  if (!compact) {
    parts.push(`<text class="axis-label" x="${m.l + W / 2}" y="${height - 4}" text-anchor="middle">${esc(xLabel)}</text>`);
    parts.push(`<text class="axis-label" transform="translate(14 ${m.t + H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  }
  return `<svg class="chart-svg" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">${titleTag}${parts.join("")}</svg>`;
}

/** The shaded x range of ``highlight`` ({from, to, name}), clipped to the plot. */
function highlightRect({ from, to, name = "" }, sx, top, height) {
  const x0 = sx(from), x1 = sx(to);
  const left = Math.min(x0, x1), w = Math.max(2, Math.abs(x1 - x0));
  return `<rect class="highlight" x="${left.toFixed(1)}" y="${top}" width="${w.toFixed(1)}" height="${height}">`
    + `<title>${esc(name)}</title></rect>`;
}
