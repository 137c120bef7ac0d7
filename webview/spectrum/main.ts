// Spectrum side panel: σ on a log axis with the cumulative-energy curve, a draggable cut line
// for the focused layer's rank (numbers update live), overlays, export. See protocol.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { Plugin, TooltipItem } from 'chart.js';
import {
  Chart, applyThemeDefaults, chartPng, chartSvg, drawnPoints, onThemeChange, themeColors, utf8ToBase64,
  type ThemeColors,
} from '../shared/chart';
import { debounce, h, replace } from '../shared/dom';
import { formatCount, formatPercent, formatShape } from '../../src/core/format';
import { WebviewClient } from '../shared/webview';
import {
  CompressAtRankRequest, DidAddSeriesNotification, DidChangeBusyNotification, DidChangeRankCommand,
  DidSetSeriesNotification, ExportRequest, PickOverlayCommand, RevealLayerCommand,
  type ExportFormat, type SpectrumSeries, type SpectrumState,
} from './protocol';
import { energyCurve, maxRank, rankForEnergy, spectrumCsv, summarizeCut } from './rank';

const client = new WebviewClient<SpectrumState>();
let colors = themeColors();
applyThemeDefaults(colors);

const state: SpectrumState = client.getState(1) ?? {
  version: 1, series: [], focus: null, rank: null, modelName: null, logScale: true, normalize: false,
};

// ---------- DOM ----------

const caption = h('div', { class: 'caption' });
const focusSelect = h('vscode-single-select', { 'aria-label': 'Focused layer', class: 'focus-select' });
const rankField = h('vscode-textfield', { type: 'number', min: 1, 'aria-label': 'Rank', class: 'rank-field' }) as HTMLElement & { value: string; max?: number };
const rankMax = h('span', { class: 'muted' });
const paramsText = h('span', { class: 'stat', 'data-testid': 'params' });
const energyText = h('span', { class: 'stat', 'data-testid': 'energy' });
const warning = h('div', { class: 'warning', role: 'note' });
const compressButton = h('vscode-button', { 'data-testid': 'compress' }, 'Compress at this rank') as HTMLElement & { disabled: boolean };
const logBox = h('vscode-checkbox', { 'data-testid': 'log-scale' }, 'Log scale') as HTMLElement & { checked: boolean };
const normBox = h('vscode-checkbox', { 'data-testid': 'normalize' }, 'σ / σ₁') as HTMLElement & { checked: boolean };
const canvas = h('canvas', { tabindex: 0, role: 'img', 'data-testid': 'spectrum-chart' });
const seriesList = h('ul', { class: 'series-list', 'aria-label': 'Layers shown' });
const status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
const empty = h('div', { class: 'empty' }, 'No layer selected. In the Layers tree, choose Show Spectrum on one or more layers.');

const energyButtons = (['0.9', '0.95', '0.99'] as const).map((f) =>
  h('vscode-button', { secondary: true, title: `Smallest rank keeping ${Number(f) * 100} % of the energy`, onclick: () => cutAtEnergy(Number(f)) },
    `${Number(f) * 100} %`));
const exportButtons = (['png', 'svg', 'csv'] as const).map((f) =>
  h('vscode-button', { secondary: true, onclick: () => void exportAs(f), 'data-testid': `export-${f}` }, f.toUpperCase()));

// Side-panel order: the chart first (the panel is often short), then the cut's numbers and actions.
const main = h('main', { class: 'spectrum' },
  caption,
  focusSelect,
  h('div', { class: 'chart-box' }, canvas),
  h('div', { class: 'row stats' }, h('label', null, 'Rank ', rankField), rankMax, energyText, paramsText),
  warning,
  h('div', { class: 'row' }, compressButton, ...energyButtons),
  h('div', { class: 'row' }, logBox, normBox,
    h('vscode-button', { secondary: true, onclick: () => client.send(PickOverlayCommand, {}) }, 'Add layer…')),
  h('div', { class: 'row' }, h('span', { class: 'muted' }, 'Export'), ...exportButtons),
  seriesList,
  status,
);
document.body.append(empty, main);

// ---------- chart ----------

const focused = (): SpectrumSeries | undefined =>
  state.series.find((s) => s.layer === state.focus) ?? state.series[0];

/** The vertical cut line at the focused layer's rank, with a grab handle. */
const cutLine: Plugin<'line'> = {
  id: 'rankscopeCut',
  afterDatasetsDraw(chart) {
    if (state.rank === null || !focused()) return;
    const x = chart.scales.x!.getPixelForValue(state.rank);
    const { top, bottom } = chart.chartArea;
    const ctx = chart.ctx;
    ctx.save();
    ctx.strokeStyle = colors.accent;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
    ctx.fillStyle = colors.accent;
    ctx.fillRect(x - 4, top, 8, 10);
    ctx.fillStyle = colors.foreground;
    ctx.textAlign = x > (chart.chartArea.left + chart.chartArea.right) / 2 ? 'right' : 'left';
    ctx.fillText(`r = ${state.rank}`, x + (ctx.textAlign === 'right' ? -8 : 8), top + 10);
    ctx.restore();
  },
};

const chart = new Chart(canvas, {
  type: 'line',
  data: { datasets: [] },
  options: {
    parsing: false,
    normalized: true,
    interaction: { mode: 'index', intersect: false, axis: 'x' },
    scales: {
      x: { type: 'linear', min: 1, title: { display: true, text: 'rank (index of σ)' }, ticks: { precision: 0 } },
      y: { type: 'logarithmic', position: 'left', title: { display: true, text: 'σ' }, ticks: { callback(v) { return sigmaTick(Number(v), this.max / Math.max(this.min, Number.MIN_VALUE)); } } },
      energy: {
        type: 'linear', position: 'right', min: 0, max: 100,
        title: { display: true, text: 'energy kept %' }, grid: { drawOnChartArea: false },
      },
    },
    plugins: {
      legend: { display: false },
      tooltip: {
        callbacks: {
          title: (items: TooltipItem<'line'>[]) => `rank ${items[0]?.parsed.x ?? ''}`,
          label: (item: TooltipItem<'line'>) => item.dataset.yAxisID === 'energy'
            ? `energy kept: ${item.parsed.y!.toFixed(2)} %`
            : `${item.dataset.label}: ${item.parsed.y!.toPrecision(4)}`,
        },
      },
    },
  },
  plugins: [cutLine],
});

/** σ-axis labels, short; on a log axis spanning decades only at 1·, 2·, 5·10ⁿ (else they crowd). */
function sigmaTick(v: number, span: number): string {
  if (!(v > 0)) return String(v);
  const mantissa = Math.round(v / 10 ** Math.floor(Math.log10(v) + 1e-9));
  if (state.logScale && span > 20 && ![1, 2, 5].includes(mantissa)) return '';
  return v >= 1e4 || v < 1e-2 ? v.toExponential(0) : String(Number(v.toPrecision(2)));
}

function rebuildChart(): void {
  const f = focused();
  const datasets: typeof chart.data.datasets = [];
  state.series.forEach((s, i) => {
    const color = colors.series[i % colors.series.length]!;
    const top = s.singularValues[0] ?? 1;
    const scale = state.normalize && top > 0 ? 1 / top : 1;
    // A log axis cannot show exact zeros; clamp them far below σ₁ so every σ is still drawn.
    const floor = Math.max(top * scale * 1e-12, Number.MIN_VALUE);
    const sparse = s.singularValues.length <= 64;
    datasets.push({
      label: s.layer, yAxisID: 'y', borderColor: color, backgroundColor: color,
      borderWidth: s === f ? 2 : 1.25, pointRadius: sparse ? 2 : 0, pointHitRadius: 4,
      data: s.singularValues.map((v, j) => ({ x: j + 1, y: Math.max(v * scale, floor) })),
    });
  });
  if (f) {
    datasets.push({
      label: 'energy kept', yAxisID: 'energy', borderColor: colors.muted, backgroundColor: colors.muted,
      borderDash: [4, 3], borderWidth: 1.25, pointRadius: 0, pointHitRadius: 0,
      data: energyCurve(f).map((e, j) => ({ x: j + 1, y: e * 100 })),
    });
  }
  chart.data.datasets = datasets;
  const n = Math.max(1, ...state.series.map((s) => s.singularValues.length));
  chart.options.scales!.x!.max = n;
  (chart.options.scales!.y as { type: string }).type = state.logScale ? 'logarithmic' : 'linear';
  (chart.options.scales!.y as { title: { text: string } }).title.text = state.normalize ? 'σ / σ₁' : 'σ';
  chart.update();
  // For tests and screen readers: what was actually drawn.
  const sigmaPoints = drawnPoints(chart, (i) => i < state.series.length);
  canvas.dataset.drawnPoints = String(sigmaPoints);
  canvas.dataset.focusPoints = String(f ? chart.getDatasetMeta(state.series.indexOf(f)).data.length : 0);
  canvas.setAttribute('aria-label', f
    ? `Singular values of ${state.series.length} layer(s); focused ${f.layer}: ${f.singularValues.length} values`
    : 'No spectrum');
}

// ---------- rendering ----------

function render(): void {
  const f = focused();
  empty.hidden = !!f;
  main.hidden = !f;
  replace(caption, state.modelName ?? '');
  replace(focusSelect, ...state.series.map((s) => {
    const o = h('vscode-option', { value: s.layer }, s.layer);
    if (s === f) o.setAttribute('selected', '');
    return o;
  }));
  replace(seriesList, ...state.series.map((s, i) => h('li', null,
    h('span', { class: 'swatch', 'data-color': i % colors.series.length }),
    h('div', { class: 'grow' },
      h('div', { class: 'name', title: s.layer }, s.layer),
      h('div', { class: 'muted' }, `${formatShape(s.shape)} · ${formatCount(s.params)} · r95 ${s.energyRank['0.95']} · stable rank ${s.stableRank.toFixed(1)}`
        + (s.compressedRank !== undefined ? ` · compressed r${s.compressedRank}` : ''))),
    h('a', { href: '#', onclick: (e) => { e.preventDefault(); client.send(RevealLayerCommand, { layer: s.layer }); } }, 'Show in Layers'),
    state.series.length > 1
      ? h('a', { href: '#', 'aria-label': `Remove ${s.layer}`, onclick: (e) => { e.preventDefault(); removeSeries(s.layer); } }, 'Remove')
      : null,
  )));
  for (const [i, sw] of Array.from(seriesList.querySelectorAll<HTMLElement>('.swatch')).entries()) {
    sw.style.background = colors.series[i % colors.series.length]!;
  }
  logBox.checked = state.logScale;
  normBox.checked = state.normalize;
  rebuildChart();
  renderCut();
}

/** Only the numbers that depend on the cut: cheap enough to run on every pointer move. */
function renderCut(): void {
  const f = focused();
  if (!f || state.rank === null) return;
  const cut = summarizeCut(f, state.rank);
  rankField.value = String(cut.rank);
  rankField.max = cut.maxRank;
  replace(rankMax, `of ${cut.maxRank}`);
  const pct = cut.paramsBefore > 0 ? cut.saved / cut.paramsBefore : 0;
  replace(paramsText, `params ${formatCount(cut.paramsBefore)} → ${formatCount(cut.paramsAfter)} (${pct >= 0 ? '−' : '+'}${formatPercent(Math.abs(pct))})`);
  replace(energyText, `energy kept ${formatPercent(cut.energyKept, 2)}`);
  // A factorized layer re-compresses to any lower rank (the core re-factorizes A·B).
  const k = f.compressedRank;
  const why = k !== undefined ? (cut.rank >= k ? `Factorized at rank ${k}: re-compression needs a lower rank.` : '')
    : !f.factorizable ? `Cannot compress this layer: ${f.reason ?? 'not factorizable'}.`
    : cut.saved <= 0 ? `No saving at rank ${cut.rank}: factorizing saves parameters only up to rank ${cut.breakEvenRank}.`
      : '';
  replace(warning, why);
  warning.hidden = !why;
  compressButton.disabled = !!why;
  chart.draw();
}

function setRank(rank: number, notify = true): void {
  const f = focused();
  if (!f) return;
  const r = Math.min(Math.max(1, Math.round(rank)), maxRank(f));
  if (r === state.rank) return;
  state.rank = r;
  renderCut();
  saveState();
  if (notify) notifyRank();
}

const notifyRank = debounce(() => {
  const f = focused();
  if (f && state.rank !== null) client.send(DidChangeRankCommand, { layer: f.layer, rank: state.rank });
}, 250);
const saveState = debounce(() => client.setState(state), 100);

function cutAtEnergy(fraction: number): void {
  const f = focused();
  if (f) setRank(rankForEnergy(f, fraction));
}

function removeSeries(layer: string): void {
  state.series = state.series.filter((s) => s.layer !== layer);
  if (state.focus === layer) focusOn(state.series[0]?.layer ?? null);
  else render();
  saveState();
}

function focusOn(layer: string | null, rank?: number): void {
  state.focus = layer;
  const f = focused();
  state.rank = f ? Math.min(rank ?? f.compressedRank ?? f.energyRank['0.95'] ?? 1, maxRank(f)) : null;
  render();
  saveState();
}

function showStatus(text: string, busy = false): void {
  replace(status, busy ? h('vscode-progress-ring', { class: 'inline-ring' }) : null, text);
}

// ---------- user input ----------

let dragging = false;
function rankAtPointer(e: PointerEvent): number | undefined {
  const rect = canvas.getBoundingClientRect();
  const x = e.clientX - rect.left;
  const y = e.clientY - rect.top;
  const a = chart.chartArea;
  if (!dragging && (x < a.left || x > a.right || y < a.top || y > a.bottom)) return undefined;
  return chart.scales.x!.getValueForPixel(Math.min(Math.max(x, a.left), a.right));
}
canvas.addEventListener('pointerdown', (e) => {
  const r = rankAtPointer(e);
  if (r === undefined) return;
  dragging = true;
  canvas.setPointerCapture(e.pointerId);
  setRank(r);
});
canvas.addEventListener('pointermove', (e) => {
  if (!dragging) return;
  const r = rankAtPointer(e);
  if (r !== undefined) setRank(r);
});
const endDrag = (e: PointerEvent): void => {
  dragging = false;
  if (canvas.hasPointerCapture(e.pointerId)) canvas.releasePointerCapture(e.pointerId);
};
canvas.addEventListener('pointerup', endDrag);
canvas.addEventListener('pointercancel', endDrag);
canvas.addEventListener('keydown', (e) => {
  const f = focused();
  if (!f || state.rank === null) return;
  const step = { ArrowLeft: -1, ArrowRight: 1, PageDown: -10, PageUp: 10 }[e.key];
  if (step !== undefined) setRank(state.rank + step);
  else if (e.key === 'Home') setRank(1);
  else if (e.key === 'End') setRank(maxRank(f));
  else return;
  e.preventDefault();
});

rankField.addEventListener('change', () => {
  const v = Number(rankField.value);
  if (Number.isFinite(v) && v >= 1) setRank(v);
  else renderCut();
});
focusSelect.addEventListener('change', () => focusOn((focusSelect as unknown as { value: string }).value));
logBox.addEventListener('change', () => { state.logScale = logBox.checked; rebuildChart(); saveState(); });
normBox.addEventListener('change', () => { state.normalize = normBox.checked; rebuildChart(); saveState(); });

compressButton.addEventListener('click', async () => {
  const f = focused();
  if (!f || state.rank === null || compressButton.disabled) return;
  compressButton.disabled = true;
  showStatus(`Compressing ${f.layer} at rank ${state.rank}…`, true);
  try {
    const r = await client.request(CompressAtRankRequest, { layer: f.layer, rank: state.rank });
    showStatus(`Wrote ${r.file}: ${formatCount(r.paramsBefore)} → ${formatCount(r.paramsAfter)} params, energy kept ${formatPercent(r.energyKept, 2)}.`);
  } catch (e) {
    showStatus(`Compression failed: ${(e as Error).message}`);
  } finally {
    renderCut();
  }
});

async function exportAs(format: ExportFormat): Promise<void> {
  const f = focused();
  if (!f) return;
  const base = `${f.layer.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100) || 'layer'}-spectrum.${format}`;
  const title = `Singular values: ${state.series.map((s) => s.layer).join(', ')}`;
  const contents = format === 'png' ? chartPng(chart, colors.background)
    : utf8ToBase64(format === 'svg' ? chartSvg(chart, colors, title) : spectrumCsv(state.series));
  try {
    const r = await client.request(ExportRequest, { format, suggestedName: base, contents, encoding: 'base64' });
    if (r.saved) showStatus(`Saved ${r.saved}`);
  } catch (e) {
    showStatus(`Export failed: ${(e as Error).message}`);
  }
}

// ---------- host messages ----------

client.on(DidSetSeriesNotification, (p) => {
  state.series = p.series;
  state.modelName = p.modelName ?? state.modelName;
  showStatus('');
  focusOn(p.focus ?? p.series[0]?.layer ?? null, p.rank);
});
client.on(DidAddSeriesNotification, (p) => {
  for (const s of p.series) {
    const i = state.series.findIndex((x) => x.layer === s.layer);
    if (i >= 0) state.series[i] = s;
    else state.series.push(s);
  }
  if (!focused()) focusOn(state.series[0]?.layer ?? null);
  else render();
  saveState();
});
client.on(DidChangeBusyNotification, (p) => showStatus(p.message ?? '', p.message !== null));

onThemeChange((c: ThemeColors) => { colors = c; render(); });
render();
client.ready();
