// demo-output/report.html: one self-contained page (inline SVG charts, no scripts) with the
// demo's steps, the layers' spectra, the sweep's trade-off chart and the LORTSAR-style table.
import { sweepSvg } from '../core/eval/report';
import type { SweepResult } from '../core/eval/sweep';
import type { LayerSpectrum } from '../core/linalg';
import type { DemoSummary, ResultsTable } from './demo';

export interface DemoReport {
  summary: DemoSummary;
  sweep: SweepResult;
  /** Largest first. */
  spectra: LayerSpectrum[];
  /** From `npm run results` (DIR/results.json), when it ran into the same folder. */
  table?: ResultsTable;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : (x * 100).toFixed(2));
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/** Normalized spectra σᵢ/σ₁ (log scale) against i / min(m, n), for the largest layers. */
export function spectraSvg(spectra: LayerSpectrum[], count = 8, width = 760, height = 380): string {
  const shown = spectra.slice(0, count);
  const m = { left: 60, right: 250, top: 30, bottom: 46 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const yMin = -4;
  const X = (f: number) => m.left + f * w;
  const Y = (l: number) => m.top + (-Math.max(yMin, l) / -yMin) * h;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="18" font-size="14" font-weight="600">Singular-value spectra of the largest layers</text>`,
    `<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#888"/>`];
  for (let e = 0; e >= yMin; e--) {
    parts.push(`<line x1="${m.left}" y1="${Y(e)}" x2="${m.left + w}" y2="${Y(e)}" stroke="#e5e5e5"/><text x="${m.left - 6}" y="${Y(e) + 4}" text-anchor="end">1e${e}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) parts.push(`<text x="${X(f)}" y="${m.top + h + 16}" text-anchor="middle">${f}</text>`);
  parts.push(`<text x="${m.left + w / 2}" y="${height - 10}" text-anchor="middle">index / min(m, n)</text>`);
  parts.push(`<text transform="translate(16 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">σᵢ / σ₁</text>`);
  shown.forEach((sp, i) => {
    const sv = sp.singularValues;
    const top = sv[0] || 1;
    const n = sv.length;
    const step = Math.max(1, Math.floor(n / 200));
    const pts: string[] = [];
    for (let k = 0; k < n; k += step) pts.push(`${X(n > 1 ? k / (n - 1) : 0).toFixed(1)},${Y(Math.log10(Math.max(sv[k] / top, 1e-12))).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts.join(' ')}"><title>${esc(sp.layer)}</title></polyline>`);
    const y = m.top + 10 + i * 18;
    parts.push(`<line x1="${m.left + w + 12}" y1="${y}" x2="${m.left + w + 28}" y2="${y}" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/><text x="${m.left + w + 34}" y="${y + 4}">${esc(`${sp.layer} ${sp.shape[0]}×${sp.shape[1]}`.slice(0, 34))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The LORTSAR-form table: from results.json when there, else the sweep's figures right after factorization. */
function resultsTableHtml(r: DemoReport): string {
  const head = '<tr><th>cut</th><th>allocation</th><th>method</th><th>parameters</th><th>size (KiB)</th><th>top-1 SVD %</th><th>top-1 fine-tuned %</th><th>top-1 distilled %</th><th>CPU ms/batch</th></tr>';
  if (r.table) {
    const t = r.table;
    const tableHead = '<tr><th>cut</th><th>allocation</th><th>method</th><th>parameters</th><th>MACs</th><th>size (KiB)</th><th>top-1 SVD %</th><th>top-1 fine-tuned %</th><th>top-1 distilled %</th><th>CPU ms/batch (original → compressed)</th></tr>';
    const macs = (m: number | null) => (m === null ? '—' : m.toLocaleString('en-US'));
    const rows = t.rows.map((x) => `<tr><td>−${Math.round(x.cut * 100)} %</td><td>${x.allocation}</td><td>${x.method}</td><td>${x.params.toLocaleString('en-US')}</td><td>${macs(x.macs)}</td><td>${(x.fileSize / 1024).toFixed(0)}</td>`
      + `<td>${pct(x.top1Svd)}</td><td>${pct(x.top1Finetuned)}</td><td>${pct(x.top1Distilled)}</td><td>${x.latency.originalMs.toFixed(2)} → ${x.latency.compressedMs.toFixed(2)} (×${x.latency.ratio.toFixed(2)})</td></tr>`).join('\n');
    return `<p>Fine-tuning: ${t.epochs} epochs. ${esc(t.splits)} ${esc(t.machine)}.</p><table><thead>${tableHead}</thead><tbody>
<tr><td>0</td><td>original</td><td></td><td>${t.baseline.params.toLocaleString('en-US')}</td><td>${macs(t.baseline.macs)}</td><td>${(t.baseline.fileSize / 1024).toFixed(0)}</td><td>${pct(t.baseline.top1)}</td><td></td><td></td><td>${t.baseline.latencyMs.toFixed(2)}</td></tr>
${rows}</tbody></table>`;
  }
  const ft = r.summary.steps.finetune;
  const knee = r.summary.steps.compress.point;
  const points = r.sweep.points.filter((p) => p.kind === 'budget');
  const rows = points.map((p) => `<tr><td>−${Math.round(p.level * 100)} %</td><td>${p.allocation}</td><td>${p.method ?? 'svd'}</td><td>${p.params.toLocaleString('en-US')}</td><td>${(p.fileSize / 1024).toFixed(0)}</td>`
    + `<td>${pct(p.metrics.top1)}</td><td>${ft.ran && p.label === knee ? pct(ft.top1) : '—'}</td><td>—</td><td>${p.latency ? p.latency.medianMs.toFixed(2) : '—'}</td></tr>`).join('\n');
  const o = r.sweep.original;
  return `<p>Figures right after factorization (plain or whitened SVD) from this run's sweep; fine-tuned figures for the knee only. <code>npm run results</code> fills every cell (fine-tuning and distillation per row).</p>
<table><thead>${head}</thead><tbody>
<tr><td>0</td><td>original</td><td></td><td>${o.params.toLocaleString('en-US')}</td><td>${(o.fileSize / 1024).toFixed(0)}</td><td>${pct(o.metrics.top1)}</td><td></td><td></td><td>${o.latency ? o.latency.medianMs.toFixed(2) : '—'}</td></tr>
${rows}</tbody></table>`;
}

export function demoReportHtml(r: DemoReport): string {
  const s = r.summary;
  const st = s.steps;
  const ft = st.finetune;
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  const steps = [
    ['1 inspect', `${st.inspect.layers} weight layers (${st.inspect.factorizable} factorizable), ${st.inspect.totalParams.toLocaleString('en-US')} parameters, ${st.inspect.spectra} spectra`],
    ['2 sweep', `${st.sweep.points} compressed points evaluated; original top-1 ${pct(st.sweep.original)} %`],
    ['3 compress', `knee: ${esc(st.compress.point)} — ${st.compress.layersCompressed} layers factorized, ${st.compress.paramsBefore.toLocaleString('en-US')} → ${st.compress.paramsAfter.toLocaleString('en-US')} parameters, ${kib(st.compress.fileSizeBefore)} → ${kib(st.compress.fileSizeAfter)}`],
    ['4 evaluate', `top-1 ${pct(st.evaluate.top1Original)} % → ${pct(st.evaluate.top1Compressed)} % (agreement ${pct(st.evaluate.agreement)} %); latency ${st.evaluate.latencyOriginalMs.toFixed(2)} → ${st.evaluate.latencyCompressedMs.toFixed(2)} ms/batch`],
    ['5 fine-tune', ft.ran ? `top-1 ${pct(ft.top1)} % after ${ft.epochs} epoch(s) on ${esc(ft.device)} (${ft.seconds.toFixed(0)} s)` : `skipped: ${esc(ft.reason)}${ft.howToEnable ? ` — ${esc(ft.howToEnable)}` : ''}`],
  ].map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rankscope demo</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#111;max-width:1000px}table{border-collapse:collapse;margin:12px 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}td:last-child{white-space:normal}td:first-child,th:first-child,td:nth-child(2){text-align:left}.muted{color:#666}h2{margin-top:32px}</style>
</head><body>
<h1>Rankscope demo: low-rank compression of ${esc(s.model.split(/[\\/]/).pop() ?? s.model)}</h1>
<p class="muted">Model ${esc(s.model)} · data ${esc(s.data)} · ${s.seconds.toFixed(0)} s${s.ci ? ' · CI mode (reduced epochs)' : ''}</p>
<h2>Steps</h2>
<table><tbody>${steps}</tbody></table>
<h2>Spectra</h2>
${spectraSvg(r.spectra)}
<h2>Trade-off sweep</h2>
${sweepSvg(r.sweep)}
<h2>Results (LORTSAR form)</h2>
${resultsTableHtml(r)}
</body></html>
`;
}
