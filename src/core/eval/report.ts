// Static sweep reports: sweep.json (the SweepResult), sweep.csv (one row per point), sweep.svg
// (score against parameters, one series per allocation, the Pareto front as a line) and
// sweep.html (the chart inline plus the table; no scripts, opens anywhere). Written atomically.
import { join } from 'node:path';
import { ensureOutputFolder, writeFileAtomic } from '../fs/atomicWrite';
import type { Calibration, SweepPoint, SweepResult } from './sweep';

const COLORS: Record<string, string> = { original: '#111111', energy: '#1f77b4', uniform: '#ff7f0e', sensitivity: '#2ca02c', threshold: '#9467bd' };

export function metricLabel(metric: SweepResult['metric']): string {
  return { top1: 'top-1 accuracy (%)', top5: 'top-5 accuracy (%)', agreement: 'top-1 agreement with the original (%)', kl: 'mean KL to the original (−, higher is better)' }[metric];
}

/** What the sensitivity probes ran on, for every report: "45 probes (8 more took a lower rank's loss) on 256 of 405 samples (seed 0), mean KL". */
export function calibrationText(c: Calibration): string {
  const measure = c.measure === 'kl' ? 'mean KL to the original' : `${c.measure} drop`;
  const on = c.samples === c.of ? `all ${c.of} samples` : `a calibration subset of ${c.samples} of ${c.of} samples (seed ${c.seed})`;
  const inferred = c.inferred ? ` (${c.inferred} more ranks took a lower rank's loss: kept energy within ${c.energyEpsilon} of it)` : '';
  return `sensitivity probes: ${c.probes} measured${inferred} on ${on}, loss = ${measure}`;
}

/** The score as plotted: percentages for accuracy-like metrics. */
function plotted(p: SweepPoint, metric: SweepResult['metric']): number {
  return metric === 'kl' ? p.score : p.score * 100;
}

function seriesOf(p: SweepPoint): string {
  return p.kind === 'original' ? 'original' : p.kind === 'energy' ? 'threshold' : p.allocation ?? 'energy';
}

export function sweepCsv(r: SweepResult): string {
  const head = ['id', 'kind', 'allocation', 'level', 'label', 'params', 'file_size', 'layers_compressed', 'top1', 'top5', 'agreement', 'relative_error', 'mean_kl',
    'latency_median_ms', 'latency_p90_ms', 'throughput', 'pareto', 'cached'];
  const cell = (v: unknown) => {
    if (v === undefined || v === null || (typeof v === 'number' && Number.isNaN(v))) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const rows = [r.original, ...r.points].map((p) => [
    p.id, p.kind, p.allocation, p.level, p.label, p.params, p.fileSize, p.layersCompressed, p.metrics.top1, p.metrics.top5, p.metrics.agreement,
    p.metrics.relativeError, p.metrics.meanKL, p.latency?.medianMs, p.latency?.p90Ms, p.latency?.throughput, p.pareto, p.cached,
  ].map(cell).join(','));
  return [head.join(','), ...rows].join('\n') + '\n';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function compact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(n / 1e3).toPrecision(3)}k`;
  return `${+n.toPrecision(3)}`;
}

export function sweepSvg(r: SweepResult, width = 760, height = 460): string {
  const all = [r.original, ...r.points].filter((p) => Number.isFinite(p.score));
  const m = { left: 70, right: 160, top: 36, bottom: 56 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const xs = all.map((p) => p.params);
  const ys = all.map((p) => plotted(p, r.metric));
  const x0 = Math.min(...xs, 0);
  let x1 = Math.max(...xs);
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.08 || 1;
  y0 -= pad;
  y1 += pad;
  if (r.metric !== 'kl') { y0 = Math.max(0, y0); y1 = Math.min(100, y1); }
  x1 *= 1.03;
  const X = (v: number) => m.left + ((v - x0) / (x1 - x0)) * w;
  const Y = (v: number) => m.top + h - ((v - y0) / (y1 - y0)) * h;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${m.left}" y="20" font-size="14" font-weight="600">${esc(`Accuracy vs parameters — ${r.model.split('/').pop()}`)}</text>`);
  for (const t of ticks(x0, x1)) {
    parts.push(`<line x1="${X(t)}" y1="${m.top}" x2="${X(t)}" y2="${m.top + h}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${X(t)}" y="${m.top + h + 16}" text-anchor="middle" fill="#444">${compact(t)}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    parts.push(`<line x1="${m.left}" y1="${Y(t)}" x2="${m.left + w}" y2="${Y(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${m.left - 6}" y="${Y(t) + 4}" text-anchor="end" fill="#444">${+t.toPrecision(4)}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  parts.push(`<text x="${m.left + w / 2}" y="${height - 14}" text-anchor="middle">parameters</text>`);
  parts.push(`<text transform="translate(16 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">${esc(metricLabel(r.metric))}</text>`);
  // Pareto front: a line through the front's points, cheapest first.
  const front = all.filter((p) => p.pareto).sort((a, b) => a.params - b.params);
  if (front.length > 1) {
    parts.push(`<polyline fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5 3" points="${front.map((p) => `${X(p.params).toFixed(1)},${Y(plotted(p, r.metric)).toFixed(1)}`).join(' ')}"/>`);
  }
  // Each series joined by level, then its markers.
  const series = [...new Set(all.map(seriesOf))];
  for (const s of series) {
    const pts = all.filter((p) => seriesOf(p) === s).sort((a, b) => a.params - b.params);
    const color = COLORS[s] ?? '#555';
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-opacity="0.45" points="${pts.map((p) => `${X(p.params).toFixed(1)},${Y(plotted(p, r.metric)).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      const cx = X(p.params).toFixed(1);
      const cy = Y(plotted(p, r.metric)).toFixed(1);
      const title = `<title>${esc(`${p.label}: ${plotted(p, r.metric).toPrecision(4)} at ${p.params} parameters`)}</title>`;
      if (s === 'original') parts.push(`<rect x="${+cx - 5}" y="${+cy - 5}" width="10" height="10" fill="${color}">${title}</rect>`);
      else parts.push(`<circle cx="${cx}" cy="${cy}" r="${p.pareto ? 5 : 4}" fill="${color}" stroke="${p.pareto ? '#d62728' : 'none'}" stroke-width="2">${title}</circle>`);
    }
  }
  // Legend.
  const legend = [...series.map((s) => ({ s, label: s === 'threshold' ? 'energy threshold' : s === 'original' ? 'original' : `${s} allocation` })), { s: 'pareto', label: 'Pareto front' }];
  legend.forEach((l, i) => {
    const y = m.top + 10 + i * 20;
    const x = m.left + w + 16;
    if (l.s === 'pareto') parts.push(`<line x1="${x}" y1="${y}" x2="${x + 14}" y2="${y}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="5 3"/>`);
    else if (l.s === 'original') parts.push(`<rect x="${x + 2}" y="${y - 5}" width="10" height="10" fill="${COLORS.original}"/>`);
    else parts.push(`<circle cx="${x + 7}" cy="${y}" r="5" fill="${COLORS[l.s] ?? '#555'}"/>`);
    parts.push(`<text x="${x + 20}" y="${y + 4}">${esc(l.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function sweepHtml(r: SweepResult, svg = sweepSvg(r)): string {
  const pct = (x?: number) => (x === undefined ? '' : `${(x * 100).toFixed(2)}`);
  const rows = [r.original, ...r.points].map((p) => `<tr${p.pareto ? ' class="front"' : ''}><td>${esc(p.label)}</td><td>${p.params.toLocaleString('en-US')}</td><td>${(p.fileSize / 1024).toFixed(1)}</td>`
    + `<td>${pct(p.metrics.top1)}</td><td>${pct(p.metrics.top5)}</td><td>${pct(p.metrics.agreement)}</td><td>${p.metrics.meanKL?.toExponential(2) ?? ''}</td>`
    + `<td>${p.latency ? p.latency.medianMs.toFixed(2) : ''}</td><td>${p.latency ? p.latency.p90Ms.toFixed(2) : ''}</td><td>${p.pareto ? '★' : ''}</td></tr>`).join('\n');
  const t = r.timing;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rankscope sweep — ${esc(r.model)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111}table{border-collapse:collapse;margin-top:16px}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}tr.front td{font-weight:600}.muted{color:#666}</style>
</head><body>
<h1>Compression sweep</h1>
<p class="muted">Model ${esc(r.model)} · data ${esc(r.data)} (${r.samples} samples) · metric ${esc(metricLabel(r.metric))} · wall time ${t.total.toFixed(1)} s (compression ${t.compress.toFixed(1)} s, evaluation ${t.evaluate.toFixed(1)} s, latency ${t.latency.toFixed(1)} s, sensitivity probes ${t.sensitivity.toFixed(1)} s; ${t.cachedPoints} points from cache)</p>${r.calibration ? `\n<p class="muted">${esc(calibrationText(r.calibration))}</p>` : ''}
${svg}
<table><thead><tr><th>point</th><th>parameters</th><th>size (KiB)</th><th>top-1 %</th><th>top-5 %</th><th>agreement %</th><th>mean KL</th><th>median ms/batch</th><th>p90 ms</th><th>Pareto</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}

/** Writes sweep.json, sweep.csv, sweep.svg and sweep.html into `dir`; returns their paths. */
export async function writeSweepReport(r: SweepResult, dir: string, signal?: AbortSignal): Promise<string[]> {
  ensureOutputFolder(dir);
  const svg = sweepSvg(r);
  const files: [string, string][] = [
    ['sweep.json', JSON.stringify(r, null, 2) + '\n'],
    ['sweep.csv', sweepCsv(r)],
    ['sweep.svg', svg + '\n'],
    ['sweep.html', sweepHtml(r, svg)],
  ];
  const written: string[] = [];
  for (const [name, text] of files) {
    const path = join(dir, name);
    await writeFileAtomic(path, text, { signal });
    written.push(path);
  }
  return written;
}
