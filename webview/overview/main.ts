// Model overview (custom editor for .onnx): summary, parameters by layer kind, and the layers
// with the most to gain, each with "Show in Layers". See protocol.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import type { TooltipItem } from 'chart.js';
import { Chart, applyThemeDefaults, onThemeChange, themeColors, type ThemeColors } from '../shared/chart';
import { h, replace } from '../shared/dom';
import { WebviewClient } from '../shared/webview';
import { formatBytes, formatCount, formatPercent, formatShape } from '../../src/core/format';
import {
  DidFailNotification, DidLoadNotification, DidUpdateGainsNotification, ShowInLayersCommand, ShowSpectrumCommand,
  type OverviewState, type OverviewSummary,
} from './protocol';

const client = new WebviewClient<OverviewState>();
const FORMAT_NAMES: Record<OverviewSummary['format'], string> = { onnx: 'ONNX', pytorch: 'PyTorch checkpoint (state dict)', safetensors: 'safetensors (state dict)' };
let colors = themeColors();
applyThemeDefaults(colors);
document.body.classList.add('rs-editor');

let state: OverviewState = client.getState(1) ?? { version: 1, summary: null, kinds: [], gains: [], pending: 0 };

const heading = h('h1', null, 'Loading model…');
const cards = h('div', { class: 'cards' });
const details = h('dl', { class: 'summary' });
const kindsTable = h('table', { class: 'data', 'data-testid': 'kinds' });
const kindsCanvas = h('canvas', { role: 'img', 'aria-label': 'Parameters by layer kind' });
const gainsTable = h('table', { class: 'data', 'data-testid': 'gains' });
const gainsNote = h('div', { class: 'muted' });
const failure = h('div', { class: 'error', hidden: true, role: 'alert' });

document.body.append(h('main', null,
  heading, failure, cards,
  h('h2', null, 'Layers with the most to gain'), gainsNote, gainsTable,
  h('h2', null, 'Parameters by layer kind'),
  h('div', { class: 'chart-box' }, kindsCanvas), kindsTable,
  h('h2', null, 'Model'), details,
));

const kindsChart = new Chart<'bar', number[], string>(kindsCanvas, {
  type: 'bar',
  data: { labels: [], datasets: [] },
  options: {
    indexAxis: 'y',
    plugins: {
      legend: { display: false },
      tooltip: { callbacks: { label: (i: TooltipItem<'bar'>) => `${formatCount(Number(i.raw))} parameters` } },
    },
    scales: { x: { ticks: { callback: (v) => formatCount(Number(v)) } } },
  },
});

function card(value: string, label: string): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

function render(): void {
  const s = state.summary;
  if (!s) return;
  replace(heading, s.fileName);
  const saved = s.originalParams && s.originalParams > s.totalParams ? 1 - s.totalParams / s.originalParams : 0;
  replace(cards,
    card(formatCount(s.totalParams), 'parameters'),
    card(String(s.layerCount), 'layers'),
    card(formatPercent(s.totalParams > 0 ? s.factorizableParams / s.totalParams : 0, 0), 'in factorizable layers'),
    card(formatBytes(s.fileSize), 'file size'),
    s.compressedCount > 0 ? card(`${s.compressedCount}`, `compressed layers (−${formatPercent(saved)})`) : null,
  );
  const io = (vs: { name: string; dtype: string; shape: string }[]): string => vs.map((v) => `${v.name}: ${v.dtype}[${v.shape}]`).join(', ');
  replace(details,
    h('dt', null, 'format'), h('dd', null, FORMAT_NAMES[s.format] + (s.format === 'onnx' ? `, IR ${s.irVersion}` : '')),
    ...(s.format === 'onnx' ? [h('dt', null, 'opsets'), h('dd', null, s.opsets.join(', '))] : []),
    h('dt', null, 'producer'), h('dd', null, s.producer),
    h('dt', null, 'inputs'), h('dd', null, io(s.inputs)),
    h('dt', null, 'outputs'), h('dd', null, io(s.outputs)),
  );
  replace(kindsTable,
    h('thead', null, h('tr', null, h('th', null, 'kind'), h('th', { class: 'num' }, 'layers'), h('th', { class: 'num' }, 'parameters'), h('th', { class: 'num' }, 'share'))),
    h('tbody', null, ...state.kinds.map((k) => h('tr', null,
      h('td', null, k.kind), h('td', { class: 'num' }, String(k.count)), h('td', { class: 'num' }, formatCount(k.params)),
      h('td', { class: 'num' }, formatPercent(s.totalParams > 0 ? k.params / s.totalParams : 0))))));
  kindsChart.data.labels = state.kinds.map((k) => k.kind);
  kindsChart.data.datasets = [{
    data: state.kinds.map((k) => k.params),
    backgroundColor: state.kinds.map((_, i) => colors.series[i % colors.series.length]!),
    borderColor: colors.highContrast ? colors.foreground : 'transparent',
    borderWidth: colors.highContrast ? 1 : 0,
  }];
  kindsChart.update();
  renderGains();
}

function renderGains(): void {
  replace(gainsNote, state.pending > 0
    ? h('span', null, h('vscode-progress-ring', { class: 'inline-ring' }), `Computing spectra: ${state.pending} layers left…`)
    : state.gains.length === 0 ? 'No layer saves parameters at 95 % energy.' : 'Parameters saved by factorizing each layer at the rank that keeps 95 % of its energy.');
  gainsTable.hidden = state.gains.length === 0;
  replace(gainsTable,
    h('thead', null, h('tr', null, h('th', null, 'layer'), h('th', null, 'shape'), h('th', { class: 'num' }, 'params'),
      h('th', { class: 'num' }, 'r95'), h('th', { class: 'num' }, 'saved at r95'), h('th', null, ''))),
    h('tbody', null, ...state.gains.map((g) => h('tr', null,
      h('td', { class: 'name' }, g.layer),
      h('td', null, formatShape(g.shape)),
      h('td', { class: 'num' }, formatCount(g.params)),
      h('td', { class: 'num' }, String(g.rank95)),
      h('td', { class: 'num' }, g.saved95 > 0 ? `${formatCount(g.saved95)} (${formatPercent(g.saved95 / g.params, 0)})` : 'none'),
      h('td', null,
        h('a', { href: '#', onclick: (e) => { e.preventDefault(); client.send(ShowInLayersCommand, { layer: g.layer }); } }, 'Show in Layers'),
        ' · ',
        h('a', { href: '#', onclick: (e) => { e.preventDefault(); client.send(ShowSpectrumCommand, { layer: g.layer }); } }, 'Spectrum'))))));
}

client.on(DidLoadNotification, ({ summary, kinds }) => {
  state = { ...state, summary, kinds };
  failure.hidden = true;
  render();
  client.setState(state);
});
client.on(DidUpdateGainsNotification, ({ gains, pending }) => {
  state = { ...state, gains, pending };
  renderGains();
  client.setState(state);
});
client.on(DidFailNotification, ({ message, hint }) => {
  replace(heading, 'Cannot open this model');
  replace(failure, message, hint ? h('div', { class: 'muted' }, hint) : null);
  failure.hidden = false;
});
onThemeChange((c: ThemeColors) => { colors = c; render(); });

render();
client.ready();
