// Trade-off panel: accuracy against parameters / file size / latency, one series per allocation
// and one for energy thresholds, per factorization method (plain SVD filled markers, whitened SVD
// hollow ones, and a filter per method when a sweep has several), the Pareto front over the points
// shown and the swept model; points stream in during a
// sweep, the probes show as a stage with their own count; kept sweeps are selectable. The
// accuracy axis zooms to the data (or 0–100 %), the x axis can be logarithmic. See protocol.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { ActiveElement, ChartEvent, LegendItem, TooltipItem } from 'chart.js';
import {
  Chart, applyThemeDefaults, drawnPoints, onThemeChange, themeColors, type ThemeColors,
} from '../shared/chart';
import { h, replace } from '../shared/dom';
import { WebviewClient } from '../shared/webview';
import { formatBytes, formatCount, formatPercent, formatSaved, formatShape } from '../../src/core/format';
import { SWEEP_ALLOCATIONS, SWEEP_METHODS, type SweepMethod } from '../../src/core/compress/budget';
import { paretoFront } from '../../src/core/eval/pareto';
import {
  ApplyPointRequest, CancelSweepCommand, DidAddPointNotification, DidChangeProgressNotification,
  DidChangeSweepsNotification, DidFinishSweepNotification, DidSetPointsNotification, GetPlanRequest, RunSweepCommand, SelectSweepCommand,
  type OriginalModel, type PlanView, type SweepSummary, type TradeoffPoint, type TradeoffState, type XAxis,
} from './protocol';

const AXES: Record<XAxis, { label: string; of: (p: TradeoffPoint | OriginalModel) => number | undefined; format: (v: number) => string }> = {
  params: { label: 'parameters', of: (p) => p.params, format: formatCount },
  fileSize: { label: 'file size', of: (p) => p.fileSize, format: formatBytes },
  latency: { label: 'latency (ms per batch)', of: (p) => p.latencyMs, format: (v) => `${v.toPrecision(3)} ms` },
  macs: { label: 'MACs per sample', of: (p) => p.macs, format: formatCount },
};

/** Axes only some sweeps measure (latency with latency runs, MACs when the shapes could be measured). */
const hasAxis = (k: XAxis, points: (TradeoffPoint | OriginalModel | null)[]) => points.some((p) => p && AXES[k].of(p) !== undefined);

const client = new WebviewClient<TradeoffState>();
let colors = themeColors();
applyThemeDefaults(colors);
document.body.classList.add('rs-editor');

let state: TradeoffState = client.getState(1) ?? {
  version: 1, title: '', points: [], original: null, xAxis: 'params', hidden: [], selected: null,
};
let plan: PlanView | null = null;
let running = false;

const methodOf = (p: TradeoffPoint): SweepMethod => p.method ?? 'svd';
const METHOD_LABEL: Record<SweepMethod, string> = { svd: 'plain SVD', whitened: 'whitened SVD' };
/** Series keys: an allocation or 'threshold'; a whitened point's series is prefixed 'whitened:'. */
const seriesKey = (method: SweepMethod, key: string): string => (method === 'svd' ? key : `${method}:${key}`);
/** The series a point belongs to: its method and allocation, or 'threshold' for an energy threshold. */
const seriesOf = (p: TradeoffPoint): string => seriesKey(methodOf(p), p.kind === 'energy' ? 'threshold' : p.allocation);
const BASE_SERIES: { key: string; label: string }[] = [
  ...SWEEP_ALLOCATIONS.map((a) => ({ key: a, label: `${a} allocation` })),
  { key: 'threshold', label: 'energy threshold' },
];
/** Every series, method by method; a method's series share the allocation's colour (index). */
const SERIES: { key: string; label: string; method: SweepMethod; color: number }[] = SWEEP_METHODS.flatMap((method) =>
  BASE_SERIES.map((b, color) => ({ key: seriesKey(method, b.key), label: method === 'svd' ? b.label : `${b.label} · ${METHOD_LABEL[method]}`, method, color })));
/** Methods the shown sweep has (the filter shows when there are several). */
const methodsShown = (): SweepMethod[] => SWEEP_METHODS.filter((m) => state.points.some((p) => methodOf(p) === m));
const originalLabel = (o: OriginalModel) => (o.compressedLayers
  ? `baseline: ${o.name} (already compressed, ${o.compressedLayers} layer${o.compressedLayers === 1 ? '' : 's'})`
  : `original (${o.name})`);

// ---------- DOM ----------

const title = h('div', { class: 'caption' });
const note = h('div', { class: 'muted', 'data-testid': 'sweep-note' });
const sweepSelect = h('vscode-single-select', { 'aria-label': 'Sweep', 'data-testid': 'sweeps' }) as HTMLElement & { value: string };
const sweepRow = h('div', { class: 'row', hidden: true }, h('span', { class: 'muted' }, 'Sweep'), sweepSelect);
const logToggle = h('vscode-checkbox', { 'data-testid': 'x-log', label: 'log scale' }, 'log scale') as HTMLElement & { checked: boolean };
const fullToggle = h('vscode-checkbox', { 'data-testid': 'y-full', label: 'accuracy 0–100 %' }, 'accuracy 0–100 %') as HTMLElement & { checked: boolean };
const methodRow = h('div', { class: 'row', hidden: true, 'data-testid': 'methods' });
const axisSelect = h('vscode-single-select', { 'aria-label': 'X axis', 'data-testid': 'x-axis' }) as HTMLElement & { value: string };
const runButton = h('vscode-button', { 'data-testid': 'run-sweep', onclick: () => client.send(RunSweepCommand, {}) }, 'Run sweep') as HTMLElement & { disabled: boolean };
const cancelButton = h('vscode-button', { secondary: true, hidden: true, 'data-testid': 'cancel-sweep', onclick: () => client.send(CancelSweepCommand, {}) }, 'Cancel');
const progressBar = h('vscode-progress-bar', { 'aria-label': 'Sweep progress' }) as HTMLElement & { value?: number; max: number; indeterminate: boolean };
const progressText = h('span', { class: 'muted stat' });
const progressRow = h('div', { class: 'row progress-row', hidden: true }, progressBar, progressText);
const stageBar = h('vscode-progress-bar', { 'aria-label': 'Sensitivity probes' }) as HTMLElement & { value?: number; max: number };
const stageText = h('span', { class: 'muted stat', 'data-testid': 'stage' });
const stageRow = h('div', { class: 'row progress-row', hidden: true }, stageBar, stageText);
const canvas = h('canvas', { role: 'img', 'data-testid': 'tradeoff-chart' });
const chartBox = h('div', { class: 'chart-box tall' }, canvas);
const EMPTY = 'No points yet. Run a sweep to measure accuracy at several compression levels.';
const emptyNote = h('div', { class: 'empty', 'data-testid': 'empty' }, EMPTY);
const pointsTable = h('table', { class: 'data', 'aria-label': 'Points', 'data-testid': 'points' });
const planBox = h('section', { class: 'plan', hidden: true, 'aria-label': 'Plan of the selected point' });
const status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });

document.body.append(h('main', null,
  h('div', { class: 'row' }, h('h1', null, 'Accuracy / size trade-off'), h('span', { class: 'spacer' }), runButton, cancelButton),
  title,
  note,
  sweepRow,
  h('div', { class: 'row' }, h('span', { class: 'muted' }, 'X axis'), axisSelect, logToggle, fullToggle),
  methodRow,
  progressRow,
  stageRow,
  emptyNote,
  chartBox,
  status,
  planBox,
  h('details', null, h('summary', null, 'All points'), pointsTable),
));

// ---------- chart ----------

/** A method filtered out (the filter acts only where it shows: a sweep of several methods). */
const methodHidden = (p: TradeoffPoint): boolean => state.hiddenMethods?.includes(methodOf(p)) === true && methodsShown().length > 1;
const visiblePoints = (): TradeoffPoint[] =>
  state.points.filter((p) => !state.hidden.includes(seriesOf(p)) && !methodHidden(p) && AXES[state.xAxis].of(p) !== undefined);

/** How far below the best accuracy the zoomed axis reaches (percentage points): points under that
 *  band (a collapsed model at chance level) sit on the axis floor instead of squashing the rest. */
const BAND = 20;

/** The accuracy axis (in %): zoomed to the points within BAND of the best, padded, within 0–100; or 0–100. */
function accuracyRange(values: number[], full: boolean): { min: number; max: number; below: number } {
  if (full || values.length === 0) return { min: 0, max: 100, below: 0 };
  const hi = Math.max(...values);
  const inBand = values.filter((v) => v >= hi - BAND);
  const lo = Math.min(...inBand);
  const pad = Math.max(0.5, (hi - lo) * 0.08);
  const min = Math.max(0, Math.floor((lo - pad) * 2) / 2);
  return { min, max: Math.min(100, Math.ceil((hi + pad) * 2) / 2), below: values.length - inBand.length };
}

const chart = new Chart(canvas, {
  type: 'scatter',
  data: { datasets: [] },
  options: {
    parsing: false,
    scales: {
      x: { type: 'linear', title: { display: true, text: 'parameters' }, ticks: { callback: (v) => AXES[state.xAxis].format(Number(v)) } },
      y: { type: 'linear', title: { display: true, text: 'accuracy %' } },
    },
    plugins: {
      legend: {
        position: 'bottom',
        onClick: (_e: ChartEvent, item: LegendItem) => toggleSeries(item),
      },
      tooltip: {
        callbacks: {
          label: (item: TooltipItem<'scatter'>) => {
            const raw = item.raw as { label?: string; x: number; y: number; acc?: number };
            return `${raw.label ?? item.dataset.label}: ${(raw.acc ?? raw.y).toFixed(2)} % at ${AXES[state.xAxis].format(raw.x)}`;
          },
        },
      },
    },
    onClick: (_e: ChartEvent, elements: ActiveElement[]) => {
      const el = elements[0];
      if (!el) return;
      const raw = chart.data.datasets[el.datasetIndex]?.data[el.index] as { id?: string } | undefined;
      if (raw?.id) void select(raw.id);
    },
  },
});

function toggleSeries(item: LegendItem): void {
  const key = SERIES.find((a) => a.key === (chart.data.datasets[item.datasetIndex!] as { series?: string }).series)?.key;
  if (!key) {
    chart.setDatasetVisibility(item.datasetIndex!, !chart.isDatasetVisible(item.datasetIndex!));
    chart.update();
    return;
  }
  state.hidden = state.hidden.includes(key) ? state.hidden.filter((a) => a !== key) : [...state.hidden, key];
  rebuildChart();
  client.setState(state);
}

function rebuildChart(): void {
  const axis = AXES[state.xAxis];
  const datasets: typeof chart.data.datasets = [];
  const o = state.original;
  const candidates: (TradeoffPoint | OriginalModel)[] = [...visiblePoints(), ...(o && axis.of(o) !== undefined ? [o] : [])];
  const range = accuracyRange(candidates.map((p) => p.accuracy * 100), state.yRange === 'full');
  // A point under the zoomed band is drawn on the floor (a downward triangle); its tooltip keeps the true figure.
  const yOf = (acc: number) => Math.max(acc * 100, range.min);
  const below = (acc: number) => acc * 100 < range.min;
  SERIES.forEach(({ key, label, method, color: index }) => {
    const pts = state.points.filter((p) => seriesOf(p) === key && !methodHidden(p) && axis.of(p) !== undefined);
    if (pts.length === 0) return;
    const color = colors.series[index]!;
    // Plain SVD: filled markers; whitened SVD: hollow ones with a thicker edge, same colour per allocation.
    const hollow = method !== 'svd';
    datasets.push({
      label,
      series: key,
      method,
      hidden: state.hidden.includes(key),
      clip: false, // a point on the floor is drawn whole
      pointStyle: pts.map((p) => (below(p.accuracy) || p.kind === 'energy' ? 'triangle' : 'circle')),
      pointRotation: pts.map((p) => (below(p.accuracy) ? 180 : 0)),
      borderColor: color,
      backgroundColor: hollow ? 'transparent' : color,
      pointRadius: pts.map((p) => (p.id === state.selected ? 7 : 4)),
      pointHoverRadius: 7,
      pointBorderWidth: pts.map((p) => (p.id === state.selected ? 3 : hollow ? 2 : 1)),
      pointBorderColor: pts.map((p) => (p.id === state.selected ? colors.accent : color)),
      data: pts.map((p) => ({ x: axis.of(p)!, y: yOf(p.accuracy), acc: p.accuracy * 100, id: p.id, label: p.label })),
    } as never);
  });
  // The baseline takes part: a compressed point it beats is not worth having.
  const front = paretoFront(candidates, (p) => axis.of(p)!, (p) => p.accuracy);
  // Straight segments between the front's points in view (a staircase through a point at chance
  // level drew a long vertical line; a point on the floor stays a front member, unjoined).
  const frontInView = front.filter((p) => !below(p.accuracy));
  if (frontInView.length > 1) {
    datasets.push({
      label: 'Pareto front', type: 'line', borderColor: colors.foreground, backgroundColor: 'transparent',
      borderDash: [5, 4], borderWidth: 1, pointRadius: 0, pointHitRadius: 0,
      data: frontInView.map((p) => ({ x: axis.of(p)!, y: p.accuracy * 100 })),
    } as never);
  }
  if (o && axis.of(o) !== undefined) {
    datasets.push({
      label: originalLabel(o), pointStyle: 'rectRot', pointRadius: 8, pointHoverRadius: 9,
      borderColor: colors.series[4], backgroundColor: colors.series[4],
      data: [{ x: axis.of(o)!, y: yOf(o.accuracy), acc: o.accuracy * 100, label: originalLabel(o) }],
    } as never);
  }
  chart.data.datasets = datasets;
  const x = chart.options.scales!.x as { type: string; title: { text: string } };
  x.type = state.xLog ? 'logarithmic' : 'linear';
  x.title.text = state.xLog ? `${axis.label} (log scale)` : axis.label;
  const y = chart.options.scales!.y as { min?: number; max?: number; title: { text: string } };
  y.title.text = range.below ? `accuracy % (${range.below} below ${range.min} %: ▼ on the floor)` : 'accuracy %';
  y.min = range.min;
  y.max = range.max;
  chart.update();
  const seriesCount = datasets.filter((d) => (d as { series?: string }).series).length;
  canvas.dataset.drawnPoints = String(drawnPoints(chart, (i) => i < seriesCount));
  // Per method: the points drawn (tests and screen readers tell the methods apart by these).
  canvas.dataset.methods = SWEEP_METHODS.map((m) => `${m}:${drawnPoints(chart, (i) => i < seriesCount && (datasets[i] as { method?: string }).method === m)}`).join(' ');
  canvas.dataset.yMin = String(range.min);
  canvas.dataset.yMax = String(range.max);
  canvas.dataset.below = String(range.below);
  canvas.dataset.xScale = x.type;
  canvas.dataset.front = front.map((p) => ('id' in p ? p.id : 'original')).join(' ');
  canvas.dataset.frontLine = frontInView.length > 1 ? frontInView.map((p) => ('id' in p ? p.id : 'original')).join(' ') : '';
  const onFront = new Set(front.map((p) => ('id' in p ? p.id : 'original')));
  canvas.setAttribute('aria-label', `Accuracy against ${axis.label}: ${visiblePoints().length} points, ${[...onFront].filter((id) => id !== 'original').length} on the Pareto front`);
  emptyNote.hidden = state.points.length > 0;
  replace(emptyNote, running ? 'Sweep running: points appear here as each is measured (the original first).' : EMPTY);
  // An empty chart has meaningless axes; show the note alone until the first point arrives.
  chartBox.hidden = state.points.length === 0 && !state.original;
  renderTable(onFront);
}

/** The same points as a table (keyboard and screen-reader access; a row selects its point). */
function renderTable(onFront: Set<string>): void {
  const axis = AXES[state.xAxis];
  const sorted = [...state.points].sort((a, b) => (axis.of(a) ?? Infinity) - (axis.of(b) ?? Infinity));
  replace(pointsTable,
    h('thead', null, h('tr', null, h('th', null, 'point'), h('th', null, 'allocation'), h('th', null, 'method'), h('th', { class: 'num' }, 'params'),
      h('th', { class: 'num' }, 'file size'), h('th', { class: 'num' }, 'MACs'), h('th', { class: 'num' }, 'latency'), h('th', { class: 'num' }, 'accuracy'),
      h('th', null, 'Pareto'))),
    h('tbody', null, ...sorted.map((p) => {
      const row = h('tr', { tabindex: 0, class: p.id === state.selected ? 'selected' : undefined, 'data-point': p.id, 'data-method': methodOf(p), hidden: methodHidden(p) },
        h('td', { class: 'name' }, p.label), h('td', null, p.kind === 'energy' ? 'energy threshold' : p.allocation), h('td', null, METHOD_LABEL[methodOf(p)]),
        h('td', { class: 'num' }, formatCount(p.params)), h('td', { class: 'num' }, formatBytes(p.fileSize)),
        h('td', { class: 'num' }, p.macs !== undefined ? formatCount(p.macs) : ''),
        h('td', { class: 'num' }, p.latencyMs !== undefined ? `${p.latencyMs.toPrecision(3)} ms` : ''),
        h('td', { class: 'num' }, formatPercent(p.accuracy, 2)), h('td', null, onFront.has(p.id) ? 'yes' : ''));
      row.addEventListener('click', () => void select(p.id));
      row.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); void select(p.id); } });
      return row;
    })));
}

function renderAxisOptions(): void {
  replace(axisSelect, ...(Object.keys(AXES) as XAxis[])
    .filter((k) => (k !== 'latency' && k !== 'macs') || hasAxis(k, [...state.points, state.original]))
    .map((k) => {
      const o = h('vscode-option', { value: k }, AXES[k].label);
      if (k === state.xAxis) o.setAttribute('selected', '');
      return o;
    }));
}

/** One checkbox per method when the sweep compared several (unchecked: its points leave the chart, the front and the table). */
function renderMethods(): void {
  const methods = methodsShown();
  methodRow.hidden = methods.length < 2;
  replace(methodRow, h('span', { class: 'muted' }, 'Method'), ...methods.map((m) => {
    const count = state.points.filter((p) => methodOf(p) === m).length;
    const text = `${METHOD_LABEL[m]} (${m === 'svd' ? 'filled' : 'hollow'}, ${count})`;
    const box = h('vscode-checkbox', { 'data-method': m, label: text }) as HTMLElement & { checked: boolean };
    box.checked = !state.hiddenMethods?.includes(m);
    box.addEventListener('change', () => {
      const rest = (state.hiddenMethods ?? []).filter((x) => x !== m);
      state.hiddenMethods = box.checked ? rest : [...rest, m];
      rebuildChart();
      client.setState(state);
    });
    return box;
  }));
}

function renderSweeps(): void {
  const sweeps = state.sweeps ?? [];
  sweepRow.hidden = sweeps.length < 2;
  const when = (t: number) => new Date(t).toLocaleString();
  replace(sweepSelect, ...sweeps.map((w: SweepSummary) => {
    const o = h('vscode-option', { value: w.id }, `${w.title} · ${w.spec} · ${when(w.startedAt)} · ${w.points} point${w.points === 1 ? '' : 's'}${w.status === 'completed' ? '' : ` (${w.status})`}`);
    if (w.id === state.sweepId) o.setAttribute('selected', '');
    return o;
  }));
}

function renderAll(): void {
  replace(title, state.title);
  replace(note, state.note ?? '');
  logToggle.checked = state.xLog === true;
  fullToggle.checked = state.yRange === 'full';
  renderSweeps();
  renderAxisOptions();
  renderMethods();
  rebuildChart();
}

// ---------- plan of a point ----------

async function select(id: string): Promise<void> {
  state.selected = id;
  client.setState(state);
  rebuildChart();
  replace(planBox, h('vscode-progress-ring', { class: 'inline-ring' }), 'Loading plan…');
  planBox.hidden = false;
  try {
    plan = await client.request(GetPlanRequest, { pointId: id });
    if (state.selected === id) renderPlan(plan);
  } catch (e) {
    replace(planBox, h('div', { class: 'error' }, `Could not load the plan: ${(e as Error).message}`));
  }
}

function renderPlan(p: PlanView): void {
  const point = state.points.find((x) => x.id === p.pointId);
  const apply = h('vscode-button', { 'data-testid': 'apply' }, 'Apply') as HTMLElement & { disabled: boolean };
  apply.addEventListener('click', async () => {
    apply.disabled = true;
    replace(status, h('vscode-progress-ring', { class: 'inline-ring' }), `Writing the model of "${p.label}"…`);
    try {
      const r = await client.request(ApplyPointRequest, { pointId: p.pointId });
      replace(status, `Wrote ${r.file}`);
    } catch (e) {
      replace(status, `Apply failed: ${(e as Error).message}`);
    } finally {
      apply.disabled = false;
    }
  });
  const rows = p.layers.map((l) => h('tr', null,
    h('td', { class: 'name' }, l.layer),
    h('td', null, formatShape(l.shape)),
    h('td', { class: 'num' }, l.rank !== undefined ? String(l.rank) : 'dense'),
    h('td', { class: 'num' }, `${formatCount(l.paramsBefore)} → ${formatCount(l.paramsAfter)}`),
    h('td', { class: 'num' }, l.rank !== undefined ? formatPercent(l.energyKept, 2) : ''),
    h('td', { class: 'muted' }, l.skipped ?? ''),
  ));
  replace(planBox,
    h('div', { class: 'row' },
      h('h2', null, p.label),
      h('span', { class: 'muted' }, `${point?.kind === 'energy' ? 'energy threshold (every layer keeps that share of its energy)' : `${p.allocation} allocation`} · ${METHOD_LABEL[p.method ?? 'svd']} · ${formatCount(p.paramsBefore)} → ${formatCount(p.paramsAfter)} params (${formatSaved(p.paramsBefore, p.paramsAfter)})`
        + (point ? ` · accuracy ${formatPercent(point.accuracy, 2)}` : '')),
      h('span', { class: 'spacer' }), apply),
    h('table', { class: 'data' },
      h('thead', null, h('tr', null, h('th', null, 'layer'), h('th', null, 'shape'), h('th', { class: 'num' }, 'rank'),
        h('th', { class: 'num' }, 'params'), h('th', { class: 'num' }, 'energy kept'), h('th', null, ''))),
      h('tbody', null, ...rows)));
}

// ---------- host messages ----------

client.on(DidSetPointsNotification, (p) => {
  const sameSet = p.sweepId !== undefined && p.sweepId === state.sweepId;
  state = { ...state, points: p.points, original: p.original, title: p.title, sweepId: p.sweepId, note: p.note, selected: sameSet ? state.selected : null };
  planBox.hidden = true;
  if ((state.xAxis === 'latency' || state.xAxis === 'macs') && !hasAxis(state.xAxis, p.points)) state.xAxis = 'params';
  renderAll();
  client.setState(state);
});
client.on(DidChangeSweepsNotification, ({ sweeps, shown }) => {
  state.sweeps = sweeps;
  state.sweepId = shown ?? undefined;
  renderSweeps();
  client.setState(state);
});
client.on(DidAddPointNotification, ({ point }) => {
  state.points = [...state.points.filter((x) => x.id !== point.id), point];
  if (point.latencyMs !== undefined && state.points.filter((x) => x.latencyMs !== undefined).length === 1) renderAxisOptions();
  if (state.points.filter((x) => methodOf(x) === methodOf(point)).length === 1) renderMethods();
  rebuildChart();
  client.setState(state);
});
client.on(DidChangeProgressNotification, ({ progress }) => {
  const wasRunning = running;
  running = progress !== null;
  if (wasRunning !== running && state.points.length === 0) rebuildChart();
  progressRow.hidden = progress === null;
  stageRow.hidden = !progress?.stage;
  if (progress?.stage) {
    stageBar.max = Math.max(1, progress.stage.total);
    stageBar.value = progress.stage.done;
    replace(stageText, `${progress.stage.label}: ${progress.stage.done} / ${progress.stage.total}`);
  }
  cancelButton.hidden = progress === null;
  runButton.disabled = progress !== null;
  if (progress) {
    progressBar.max = Math.max(1, progress.total);
    progressBar.value = progress.done;
    progressBar.indeterminate = progress.total === 0;
    replace(progressText, `${progress.done} / ${progress.total} · ${progress.message}`);
  }
});
client.on(DidFinishSweepNotification, ({ outcome, error }) => {
  running = false;
  progressRow.hidden = true;
  stageRow.hidden = true;
  cancelButton.hidden = true;
  runButton.disabled = false;
  replace(status, outcome === 'completed' ? `Sweep finished: ${state.points.length} points.`
    : outcome === 'cancelled' ? 'Sweep cancelled.' : `Sweep failed: ${error ?? 'unknown error'}`);
});

sweepSelect.addEventListener('change', () => {
  if (sweepSelect.value && sweepSelect.value !== state.sweepId) client.send(SelectSweepCommand, { id: sweepSelect.value });
});
logToggle.addEventListener('change', () => {
  state.xLog = logToggle.checked;
  rebuildChart();
  client.setState(state);
});
fullToggle.addEventListener('change', () => {
  state.yRange = fullToggle.checked ? 'full' : 'data';
  rebuildChart();
  client.setState(state);
});
axisSelect.addEventListener('change', () => {
  state.xAxis = axisSelect.value as XAxis;
  rebuildChart();
  client.setState(state);
});
onThemeChange((c: ThemeColors) => { colors = c; rebuildChart(); });

renderAll();
if (state.selected) void select(state.selected);
client.ready();
