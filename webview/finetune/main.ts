// Fine-tune view: live training loss and accuracy curves, progress, cancel, summary. See protocol.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { TooltipItem } from 'chart.js';
import { Chart, applyThemeDefaults, onThemeChange, themeColors, type ThemeColors } from '../shared/chart';
import { h, replace } from '../shared/dom';
import { WebviewClient } from '../shared/webview';
import { formatPercent } from '../../src/core/format';
import {
  CancelCommand, DidEpochNotification, DidFinishNotification, DidStartNotification, DidStepNotification, OpenOutputCommand,
  type FinetuneState,
} from './protocol';

const client = new WebviewClient<FinetuneState>();
let colors = themeColors();
applyThemeDefaults(colors);
document.body.classList.add('rs-editor');

let state: FinetuneState = client.getState(1) ?? {
  version: 1, run: null, status: 'idle', steps: [], epochs: [], summary: null, error: null,
};

const heading = h('h1', null, 'Fine-tuning');
const caption = h('div', { class: 'caption' });
const cancelButton = h('vscode-button', { secondary: true, 'data-testid': 'cancel', onclick: () => client.send(CancelCommand, {}) }, 'Cancel') as HTMLElement & { disabled: boolean };
const progressBar = h('vscode-progress-bar', { 'aria-label': 'Training progress' }) as HTMLElement & { value?: number; max: number };
const progressText = h('span', { class: 'muted stat', 'data-testid': 'progress' });
const lossCanvas = h('canvas', { role: 'img', 'aria-label': 'Training loss', 'data-testid': 'loss-chart' });
const accCanvas = h('canvas', { role: 'img', 'aria-label': 'Accuracy per epoch', 'data-testid': 'accuracy-chart' });
const summaryBox = h('section', { hidden: true, 'data-testid': 'summary' });
const idle = h('div', { class: 'empty' }, 'No fine-tuning run. Use "Rankscope: Fine-tune Compressed Model…" to start one.');

document.body.append(h('main', null,
  h('div', { class: 'row' }, heading, h('span', { class: 'spacer' }), cancelButton),
  caption, idle,
  h('div', { class: 'row progress-row' }, progressBar, progressText),
  h('h2', null, 'Training loss'), h('div', { class: 'chart-box' }, lossCanvas),
  h('h2', null, 'Accuracy'), h('div', { class: 'chart-box' }, accCanvas),
  summaryBox,
));

const lossChart = new Chart(lossCanvas, {
  type: 'line',
  data: { datasets: [] },
  options: {
    parsing: false,
    normalized: true,
    interaction: { mode: 'nearest', intersect: false, axis: 'x' },
    scales: { x: { type: 'linear', title: { display: true, text: 'step' } }, y: { type: 'linear', title: { display: true, text: 'loss' } } },
    plugins: { legend: { display: false } },
  },
});
const accChart = new Chart(accCanvas, {
  type: 'line',
  data: { datasets: [] },
  options: {
    parsing: false,
    interaction: { mode: 'index', intersect: false, axis: 'x' },
    scales: {
      x: { type: 'linear', title: { display: true, text: 'epoch' }, ticks: { precision: 0 } },
      y: { type: 'linear', title: { display: true, text: 'accuracy %' } },
    },
    plugins: {
      legend: { position: 'bottom' },
      tooltip: { callbacks: { label: (i: TooltipItem<'line'>) => `${i.dataset.label}: ${i.parsed.y!.toFixed(2)} %` } },
    },
  },
});

function renderCharts(): void {
  lossChart.data.datasets = [{
    label: 'loss', borderColor: colors.series[0], backgroundColor: colors.series[0], borderWidth: 1.5,
    pointRadius: state.steps.length > 50 ? 0 : 2, data: state.steps.map((s) => ({ x: s.step, y: s.loss })),
  }];
  const lines: typeof accChart.data.datasets = [{
    label: 'validation', borderColor: colors.series[1], backgroundColor: colors.series[1], pointRadius: 3,
    data: state.epochs.map((e) => ({ x: e.epoch, y: e.valAccuracy * 100 })),
  }];
  const train = state.epochs.filter((e) => e.trainAccuracy !== undefined);
  if (train.length) {
    lines.push({
      label: 'training', borderColor: colors.series[0], backgroundColor: colors.series[0], pointRadius: 3,
      data: train.map((e) => ({ x: e.epoch, y: e.trainAccuracy! * 100 })),
    });
  }
  const base = state.run?.baselineAccuracy;
  if (base !== undefined && state.run) {
    lines.push({
      label: 'before fine-tuning', borderColor: colors.muted, backgroundColor: colors.muted, borderDash: [4, 3], pointRadius: 0,
      data: [{ x: 0, y: base * 100 }, { x: Math.max(1, state.run.epochs), y: base * 100 }],
    });
  }
  accChart.data.datasets = lines;
  accChart.update();
  lossChart.update();
  lossCanvas.dataset.drawnPoints = String(lossChart.getDatasetMeta(0).data.length);
  accCanvas.dataset.drawnPoints = String(accChart.data.datasets.length ? accChart.getDatasetMeta(0).data.length : 0);
}

function renderProgress(): void {
  const run = state.run;
  idle.hidden = run !== null;
  cancelButton.disabled = state.status !== 'running';
  cancelButton.hidden = run === null;
  if (!run) return;
  replace(heading, `Fine-tuning ${run.model}`);
  replace(caption, `on ${run.device} · ${run.epochs} epochs × ${run.stepsPerEpoch} steps · output ${run.output}`);
  const total = run.epochs * run.stepsPerEpoch;
  const last = state.steps[state.steps.length - 1];
  const done = state.status === 'completed' ? total : last ? last.step + 1 : 0;
  progressBar.max = Math.max(1, total);
  progressBar.value = done;
  const lastEpoch = state.epochs[state.epochs.length - 1];
  replace(progressText, [
    state.status === 'running' ? `epoch ${(last?.epoch ?? 0) + 1} / ${run.epochs}` : state.status,
    `step ${done} / ${total}`,
    last ? `loss ${last.loss.toPrecision(4)}` : null,
    lastEpoch ? `val ${formatPercent(lastEpoch.valAccuracy, 2)}` : null,
  ].filter(Boolean).join(' · '));
}

function renderSummary(): void {
  summaryBox.hidden = state.status === 'running' || state.status === 'idle';
  if (summaryBox.hidden) return;
  const s = state.summary;
  const open = s?.output
    ? h('vscode-button', { onclick: () => client.send(OpenOutputCommand, { file: s.output! }) }, 'Open in Layers')
    : null;
  replace(summaryBox,
    h('h2', null, state.status === 'completed' ? 'Done' : state.status === 'cancelled' ? 'Cancelled' : 'Failed'),
    state.error ? h('div', { class: 'error', role: 'alert' }, state.error) : null,
    s ? h('dl', { class: 'summary' }, ...[
      ['best', `${formatPercent(s.bestAccuracy, 2)} at epoch ${s.bestEpoch}`],
      ['final', formatPercent(s.finalAccuracy, 2)],
      state.run?.baselineAccuracy !== undefined ? ['before', formatPercent(state.run.baselineAccuracy, 2)] : null,
      ['time', `${s.seconds.toFixed(1)} s`],
      s.output ? ['written', s.output] : null,
    ].flatMap((row) => (row ? [h('dt', null, row[0]), h('dd', null, row[1])] : []))) : null,
    open);
}

function renderAll(): void {
  renderProgress();
  renderCharts();
  renderSummary();
}

const save = (): void => client.setState(state);

client.on(DidStartNotification, ({ run }) => {
  state = { version: 1, run, status: 'running', steps: [], epochs: [], summary: null, error: null };
  renderAll();
  save();
});
client.on(DidStepNotification, ({ steps }) => {
  state.steps.push(...steps);
  renderProgress();
  renderCharts();
  save();
});
client.on(DidEpochNotification, ({ epoch }) => {
  state.epochs = [...state.epochs.filter((e) => e.epoch !== epoch.epoch), epoch].sort((a, b) => a.epoch - b.epoch);
  renderProgress();
  renderCharts();
  save();
});
client.on(DidFinishNotification, ({ status, summary, error }) => {
  state.status = status;
  state.summary = summary ?? null;
  state.error = error ?? null;
  renderAll();
  save();
});
onThemeChange((c: ThemeColors) => { colors = c; renderCharts(); });

renderAll();
client.ready();
