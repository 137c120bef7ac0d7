// Fine-tune view: live training loss and accuracy curves, progress, cancel, summary. See protocol.ts.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import type { TooltipItem } from 'chart.js';
import { Chart, applyThemeDefaults, onThemeChange, themeColors, type ThemeColors } from '../shared/chart';
import { h, replace } from '../shared/dom';
import { WebviewClient } from '../shared/webview';
import { formatEpochProgress, formatPercent } from '../../src/core/format';
import {
  CancelCommand, DidDescribeRunNotification, DidEpochNotification, DidFinishNotification, DidStartNotification, DidStepNotification,
  OpenOutputCommand, ResumeCommand, type FinetuneState, type FinetuneSummary,
} from './protocol';

const client = new WebviewClient<FinetuneState>();
let colors = themeColors();
applyThemeDefaults(colors);
document.body.classList.add('rs-editor');

const fresh = (run: FinetuneState['run'] = null): FinetuneState => ({
  version: 2, run, status: run ? 'running' : 'idle', steps: [], epochs: [], summary: null, error: null,
});
let state: FinetuneState = client.getState(2) ?? fresh();

/** Epoch 0 is the model before fine-tuning: the axis and the tooltips say so. */
const epochLabel = (epoch: number): string => (epoch === 0 ? 'before' : String(epoch));

const heading = h('h1', null, 'Fine-tuning');
const caption = h('div', { class: 'caption' });
const splitsBox = h('ul', { class: 'muted splits', 'data-testid': 'splits' });
const cancelButton = h('vscode-button', { secondary: true, 'data-testid': 'cancel', onclick: () => client.send(CancelCommand, {}) }, 'Cancel') as HTMLElement & { disabled: boolean };
const progressBar = h('vscode-progress-bar', { 'aria-label': 'Training progress' }) as HTMLElement & { value?: number; max: number };
const progressText = h('span', { class: 'muted stat', 'data-testid': 'progress' });
const lossCanvas = h('canvas', { role: 'img', 'aria-label': 'Training loss', 'data-testid': 'loss-chart' });
const accCanvas = h('canvas', { role: 'img', 'aria-label': 'Accuracy per epoch', 'data-testid': 'accuracy-chart' });
const summaryBox = h('section', { hidden: true, 'data-testid': 'summary' });
const idle = h('div', { class: 'empty' }, 'No fine-tuning run. Use "Rankscope: Fine-tune Compressed Model…" to start one.');

document.body.append(h('main', null,
  h('div', { class: 'row' }, heading, h('span', { class: 'spacer' }), cancelButton),
  caption, splitsBox, idle,
  h('div', { class: 'row progress-row' }, progressBar, progressText),
  h('h2', null, 'Training loss'), h('div', { class: 'chart-box' }, lossCanvas),
  h('h2', null, 'Accuracy by split'), h('div', { class: 'chart-box' }, accCanvas),
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
    layout: { padding: { left: 6, right: 10, top: 6 } },
    interaction: { mode: 'index', intersect: false, axis: 'x' },
    scales: {
      x: { type: 'linear', min: 0, title: { display: true, text: 'epoch' }, ticks: { precision: 0, stepSize: 1, callback: (v) => epochLabel(Number(v)) } },
      y: { type: 'linear', title: { display: true, text: 'accuracy %' } },
    },
    plugins: {
      legend: { position: 'bottom' },
      tooltip: {
        callbacks: {
          title: (items: TooltipItem<'line'>[]) => (items[0] ? (items[0].parsed.x === 0 ? 'before fine-tuning' : `epoch ${items[0].parsed.x}`) : ''),
          label: (i: TooltipItem<'line'>) => `${i.dataset.label}: ${i.parsed.y!.toFixed(2)} %`,
        },
      },
    },
  },
});

function renderCharts(): void {
  lossChart.data.datasets = [{
    label: 'loss', borderColor: colors.series[0], backgroundColor: colors.series[0], borderWidth: 1.5,
    pointRadius: state.steps.length > 50 ? 0 : 2, data: state.steps.map((s) => ({ x: s.step, y: s.loss })),
  }];
  // Validation starts at epoch 0 (the model before fine-tuning); training has no epoch 0.
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
  const s = state.summary;
  if (s && s.testAccuracy !== null && s.bestEpoch !== null) {
    lines.push({
      label: 'test (best weights, once)', borderColor: colors.series[2], backgroundColor: colors.series[2], pointRadius: 5,
      pointStyle: 'rectRot', showLine: false, data: [{ x: s.bestEpoch, y: s.testAccuracy * 100 }],
    });
  }
  // Points on the first and last epoch stay whole (not clipped at the chart's edge).
  for (const l of lines) (l as { clip?: number | false }).clip = false;
  accChart.options.scales!.x!.max = Math.max(1, state.run?.epochs ?? 1);
  accChart.data.datasets = lines;
  accChart.update();
  lossChart.update();
  lossCanvas.dataset.drawnPoints = String(lossChart.getDatasetMeta(0).data.length);
  accCanvas.dataset.drawnPoints = String(accChart.data.datasets.length ? accChart.getDatasetMeta(0).data.length : 0);
  accCanvas.dataset.epochs = state.epochs.map((e) => epochLabel(e.epoch)).join(',');
  accCanvas.dataset.series = lines.map((l) => l.label).join(',') + (s?.bestEpoch != null && s.testAccuracy !== null ? `@${epochLabel(s.bestEpoch)}` : '');
}

function renderProgress(): void {
  const run = state.run;
  idle.hidden = run !== null;
  cancelButton.disabled = state.status !== 'running';
  cancelButton.hidden = run === null;
  if (!run) return;
  replace(heading, `Fine-tuning ${run.model}`);
  replace(caption, [run.device ? `on ${run.device}` : 'starting the worker…',
    `${run.epochs} epoch${run.epochs === 1 ? '' : 's'}${run.stepsPerEpoch ? ` × ${run.stepsPerEpoch} steps` : ''}`,
    `output ${run.output}`, run.resumed ?? null].filter(Boolean).join(' · '));
  replace(splitsBox, ...[run.validation, run.test].filter((t): t is string => !!t).map((t) => h('li', null, t)));
  const total = run.epochs * (run.stepsPerEpoch ?? 0);
  const last = state.steps[state.steps.length - 1];
  // Steps and epochs as the worker numbers them (steps done, 1-based epochs): no shifting here.
  const done = state.status === 'completed' ? total : last?.step ?? 0;
  progressBar.max = Math.max(1, total);
  progressBar.value = done;
  const lastEpoch = state.epochs[state.epochs.length - 1];
  const running = !run.stepsPerEpoch ? 'starting' : last ? formatEpochProgress(last.epoch, run.epochs, done, total)
    : lastEpoch ? formatEpochProgress(1, run.epochs, 0, total) : 'validating the model before fine-tuning';
  replace(progressText, [
    state.status === 'running' ? running : `${state.status}${total ? ` · step ${done} / ${total}` : ''}`,
    last ? `loss ${last.loss.toPrecision(4)}` : null,
    lastEpoch ? `validation ${formatPercent(lastEpoch.valAccuracy, 2)}${lastEpoch.epoch === 0 ? ' (before)' : ''}` : null,
  ].filter(Boolean).join(' · '));
}

/** The best validation figure and where it is, or a dash with the reason. */
function bestText(s: FinetuneSummary): string {
  if (s.bestAccuracy === null || s.bestEpoch === null) return `— (${state.status === 'cancelled' ? 'cancelled before the first validation' : 'nothing was validated'})`;
  const at = s.bestEpoch === 0 ? 'before fine-tuning (no epoch beat the model as given; it is what was kept)' : `at epoch ${s.bestEpoch}`;
  return `${formatPercent(s.bestAccuracy, 2)} ${at}${state.status === 'completed' ? '' : ' (so far)'}`;
}

function renderSummary(): void {
  summaryBox.hidden = state.status === 'running' || state.status === 'idle';
  if (summaryBox.hidden) return;
  const s = state.summary;
  const open = s?.output
    ? h('vscode-button', { onclick: () => client.send(OpenOutputCommand, { file: s.output! }) }, 'Open in Layers')
    : null;
  const resume = s?.checkpoint && state.status !== 'completed'
    ? h('vscode-button', { 'data-testid': 'resume', onclick: () => client.send(ResumeCommand, {}) }, 'Resume from Checkpoint')
    : null;
  const before = state.epochs.find((e) => e.epoch === 0);
  replace(summaryBox,
    h('h2', null, state.status === 'completed' ? 'Done' : state.status === 'cancelled' ? 'Cancelled' : 'Failed'),
    state.error ? h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, state.error) : null,
    s ? h('dl', { class: 'summary' }, ...[
      ['best (validation)', bestText(s)],
      ['last epoch (validation)', s.finalAccuracy !== null ? formatPercent(s.finalAccuracy, 2) : '— (no epoch finished)'],
      ['before fine-tuning (validation)', before ? formatPercent(before.valAccuracy, 2) : '— (not measured)'],
      ['test (best weights)', s.testAccuracy !== null ? formatPercent(s.testAccuracy, 2) : `— (${s.testNote ?? 'not measured'})`],
      ['time', `${s.seconds.toFixed(1)} s`],
      s.output ? ['written', s.output] : null,
      resume ? ['checkpoint', s.checkpoint!] : null,
    ].flatMap((row) => (row ? [h('dt', null, row[0]), h('dd', null, row[1])] : []))) : null,
    open, resume);
}

function renderAll(): void {
  renderProgress();
  renderCharts();
  renderSummary();
}

const save = (): void => client.setState(state);

client.on(DidStartNotification, ({ run }) => {
  state = fresh(run);
  renderAll();
  save();
});
client.on(DidDescribeRunNotification, ({ run }) => {
  state.run = run;
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
