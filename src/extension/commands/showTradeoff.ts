// Show Accuracy/Size Trade-off: opens the trade-off panel and runs EVAL's sweep with the
// workspace's evaluation data (rankscope.json; asks for it when missing). Which model is swept:
// the task file's `model` when it names one; when the open model differs from it, or is already
// compressed, a quick pick offers the task's model, the original recorded in the open model's
// metadata and the open model (scripted calls take `model`, else the first of those). The
// baseline is labelled for what it is. Each sweep is its own kept result set in the panel.
// Points stream in as they are measured; a point's "Apply" writes that compressed model.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import * as vscode from 'vscode';
import type { TradeoffPoint } from '../../../webview/tradeoff/protocol';
import { RankscopeError } from '../../core/errors';
import { calibrationCandidates, type WhiteningSource } from '../../core/compress';
import { isCompressible, type Plan } from '../../core/compress/plan';
import { layerSpectra } from '../../core/compress/spectra';
import { calibrate, defaultCalibrationCacheDir } from '../../core/eval/calibration';
import { loadDataset, type Dataset } from '../../core/eval/dataset';
import { measureMacs, planMacs } from '../../core/eval/macs';
import { calibrationText } from '../../core/eval/report';
import { OrtRunner } from '../../core/eval/runner';
import { runSweep, sweepModelChoices, type SweepModelChoice, type SweepPoint, type SweepSpec } from '../../core/eval/sweep';
import { resolveTask } from '../../core/eval/task';
import { openOnnxModel } from '../../core/formats';
import type { OnnxModel } from '../../core/formats/onnx';
import { formatPercent } from '../../core/format';
import { onnxModel, outputPathFor, writeAndOpen } from '../compress';
import { readWorkspaceTask } from '../evalTask';
import { quickPickText } from '../format';
import { log } from '../log';
import type { ModelSession } from '../session';
import { settings } from '../settings';
import type { PreparedSweep, SweepRunner } from '../webviews/tradeoffPanel';
import type { RankscopeCommand, Services } from './command';
import { optionsArg } from './layerArgs';

export interface TradeoffOptions {
  /** Run the sweep at once (default true when data is configured). */
  run: boolean;
  /** Sweep levels, overriding rankscope.json's `sweep`. */
  spec: SweepSpec;
  /** Evaluate only the first N samples (tests, quick looks). */
  limit: number;
  /** The model to sweep (default: the task file's `model`, else the original the open model records, else the open model). */
  model: string;
}

const DEFAULT_SPEC: SweepSpec = { levels: [0.25, 0.5, 0.75], allocations: ['energy', 'uniform'], energies: [0.9, 0.95, 0.99] };

function toPoint(p: SweepPoint, macs: number | undefined): TradeoffPoint {
  return {
    id: p.id,
    allocation: p.allocation ?? 'energy',
    kind: p.kind === 'energy' ? 'energy' : 'budget',
    label: p.label,
    params: p.params,
    fileSize: p.fileSize,
    latencyMs: p.latency?.medianMs,
    ...(macs !== undefined && { macs }),
    accuracy: p.metrics.top1 ?? p.score,
    ...(p.method && { method: p.method }),
  };
}

/** "−25/50/75 % × energy, uniform; energy 90/95/99 %" */
export function specText(spec: SweepSpec): string {
  const pcts = (xs: number[]) => `${xs.map((x) => +(x * 100).toFixed(1)).join('/')} %`;
  const parts = [
    ...(spec.levels?.length ? [`−${pcts([...spec.levels].sort((a, b) => a - b))} × ${(spec.allocations ?? ['energy']).join(', ')}`] : []),
    ...(spec.energies?.length ? [`energy ${pcts([...spec.energies].sort((a, b) => a - b))}`] : []),
  ];
  const methods = spec.methods && spec.methods.length > 1 || spec.methods?.[0] === 'whitened' ? ` · ${spec.methods.join(' vs ')} SVD` : '';
  return parts.join('; ') + methods + (spec.layers?.length ? ` (layers ${spec.layers.join(', ')})` : '');
}

const WHY: Record<SweepModelChoice['why'], string> = {
  given: 'the model asked for',
  task: 'the model rankscope.json names',
  'recorded original': 'the original the open model was compressed from (recorded in its metadata)',
  open: 'the open model',
};

/** Which model to sweep: `given`, the only candidate, the first (scripted), or the user's pick; undefined = backed out. */
async function chooseModel(session: ModelSession, taskModel: string | undefined, given: Partial<TradeoffOptions>, scripted: boolean): Promise<string | undefined> {
  if (given.model) return resolve(given.model);
  const open = session.requireModel();
  const choices = sweepModelChoices({ path: session.path!, model: open }, taskModel, existsSync);
  if (choices.length === 1 || scripted) return choices[0].path;
  const compressed = open.layers.filter((l) => l.compressed).length;
  const picked = await vscode.window.showQuickPick(choices.map((c) => ({
    label: quickPickText(basename(c.path)),
    description: c.why === 'open' && compressed ? `${WHY.open}, already compressed (${compressed} layer${compressed === 1 ? '' : 's'})` : WHY[c.why],
    detail: quickPickText(c.path),
    path: c.path,
  })), { title: 'Show Trade-off: which model should the sweep compress?', placeHolder: `${basename(session.path!)} is ${compressed ? 'already compressed' : 'not the model rankscope.json names'}` });
  return picked?.path;
}

/** Identity of a result set: the model file (path, size, mtime), the data file, the limit and the spec. */
function setKey(model: string, data: string, limit: number | undefined, spec: SweepSpec, metric: string): string {
  const file = (p: string) => { const s = statSync(p); return [p, s.size, s.mtimeMs]; };
  return createHash('sha256').update(JSON.stringify({ model: file(model), data: file(data), limit: limit ?? null, spec, metric })).digest('hex').slice(0, 24);
}

/** The sweep for the workspace's task, or undefined when the user backed out (of configuring data, or of the model pick). */
async function prepare(session: ModelSession, given: Partial<TradeoffOptions>, scripted: boolean): Promise<PreparedSweep | undefined> {
  onnxModel(session.requireModel());
  let task = await readWorkspaceTask(session.path);
  if (!task?.task.data) {
    const choice = await vscode.window.showInformationMessage(
      'Rankscope: the trade-off needs evaluation data (an .npz with inputs and labels).', 'Configure Evaluation Data…');
    if (!choice) return undefined;
    await vscode.commands.executeCommand('rankscope.configureEvalData');
    task = await readWorkspaceTask(session.path);
    if (!task?.task.data) return undefined;
  }
  const modelPath = await chooseModel(session, task.task.model, given, scripted);
  if (!modelPath) return undefined;
  if (!existsSync(modelPath)) throw new RankscopeError('NOT_FOUND', `${modelPath}: no such model to sweep.`, `Fix "model" in ${task.path}, or open the model to sweep.`);
  const s = settings();
  const file = task.task;
  const resolved = resolveTask(file, {
    batchSize: file.batchSize ?? s.evalBatchSize,
    ep: file.ep ?? (s.executionProvider === 'cuda' ? 'cuda' : 'cpu'),
    ...(given.limit !== undefined ? { limit: given.limit } : {}),
  });
  if (!resolved.dataset) throw new RankscopeError('BAD_ARGUMENT', `${task.path} names no evaluation data.`);
  const dataSpec = resolved.dataset;
  const spec: SweepSpec = given.spec ?? {
    levels: resolved.sweep.levels ?? DEFAULT_SPEC.levels,
    allocations: resolved.sweep.allocations ?? DEFAULT_SPEC.allocations,
    energies: resolved.sweep.energies ?? DEFAULT_SPEC.energies,
    layers: resolved.sweep.layers,
    ...(resolved.sweep.methods && { methods: resolved.sweep.methods }),
  };
  const calibrated = spec.methods?.includes('whitened') || spec.allocations?.includes('whitened');
  const run: SweepRunner = async (signal, sink) => {
    sink.progress({ done: 0, total: 1, message: `opening ${basename(modelPath)} and computing spectra` });
    const sameAsOpen = resolve(session.path!) === modelPath;
    const model: OnnxModel = sameAsOpen ? onnxModel(session.requireModel()) : await openOnnxModel(modelPath, { signal });
    const names = model.layers.filter(isCompressible).map((l) => l.name);
    const spectra = sameAsOpen
      ? await session.ensureSpectra(names, signal)
      : await layerSpectra(model, { layers: names, order: 'size', signal, cacheDir: session.cacheDir() });
    // No signal for the runner: aborting it terminates its thread, and terminating a thread
    // inside a native ONNX Runtime run took the whole extension host down (seen in the
    // integration suite). The sweep checks `signal` between batches and points instead.
    const runner = OrtRunner.create({ ep: resolved.ep, intraOpThreads: resolved.threads });
    let dataset: Dataset | undefined;
    try {
      const ort = await runner.open(modelPath);
      dataset = await loadDataset(dataSpec, ort.inputs);
      await ort.close();
      const compressedLayers = model.layers.filter((l) => l.compressed).length;
      // The x axis 'MACs': measured once on the swept model, each point's from its plan (planMacs).
      const macs = await measureMacs(model, { runner, dataset, signal });
      if (!macs.ok) log().info(`Sweep of ${basename(modelPath)}: MACs not measured (${macs.reason}).`);
      // The whitened method (and allocation) calibrate on the evaluation data first (cached on disk).
      const whitening = calibrated ? await calibrateForSweep(model, spec, dataset, runner, signal, sink) : undefined;
      const result = await runSweep(spec, {
        model, spectra, dataset, runner, metric: resolved.metric, batchSize: resolved.batchSize, output: resolved.output,
        latency: resolved.latency, cacheDir: session.cacheDir(), signal, whitening,
        onProgress: (p) => sink.progress(p),
        onPoint: (p) => {
          if (p.kind === 'original') {
            sink.original({ params: p.params, fileSize: p.fileSize, latencyMs: p.latency?.medianMs, ...(macs.ok && { macs: macs.total }), accuracy: p.metrics.top1 ?? p.score, name: basename(modelPath), compressedLayers });
          } else {
            sink.point(toPoint(p, macs.ok ? planMacs(macs, model.layers, p.plan!) : undefined), p.plan!);
          }
        },
      });
      if (result.calibration) sink.note(calibrationText(result.calibration));
      log().info(`Sweep of ${result.model}: ${result.points.length} points in ${result.timing.total.toFixed(1)} s (${result.timing.cachedPoints} cached; sensitivity probes ${result.timing.sensitivity.toFixed(1)} s); Pareto front ${result.front.length}`
        + (result.calibration ? `; ${calibrationText(result.calibration)}` : ''));
      const best = result.points.filter((p) => p.pareto).map((p) => `${p.label} ${formatPercent(p.metrics.top1 ?? p.score, 2)}`);
      if (best.length) log().info(`  Pareto front: ${best.join(', ')}`);
    } finally {
      await dataset?.close();
      await runner.dispose();
    }
  };
  return {
    key: setKey(modelPath, dataSpec.data, dataSpec.limit, spec, resolved.metric),
    title: `${basename(modelPath)} on ${basename(dataSpec.data)}`,
    model: modelPath,
    spec: specText(spec),
    run,
  };
}

/** The calibration pass of a sweep with the whitened method or allocation, on the sweep's data; its notes go to the log. */
async function calibrateForSweep(model: OnnxModel, spec: SweepSpec, dataset: Dataset, runner: OrtRunner, signal: AbortSignal, sink: Parameters<SweepRunner>[1]): Promise<WhiteningSource> {
  const c = await calibrate(model, calibrationCandidates(model, spec.layers), dataset, {
    runner, signal, cacheDir: defaultCalibrationCacheDir(),
    onProgress: (done, total, message) => sink.progress({ done: 0, total: 1, message, stage: { label: 'calibration for whitened SVD', done, total } }),
  });
  log().info(`Calibration for the sweep: ${c.samples} samples of ${c.data} for ${c.grams.size} layer(s) in ${c.seconds.toFixed(1)} s${c.cached ? ' (cached)' : ''}`);
  for (const note of c.notes) log().info(`  ${note}`);
  return { grams: c.grams, calibration: { hash: c.key, data: c.data, samples: c.samples, seed: c.seed } };
}

export function wireTradeoff(s: Services): void {
  s.tradeoff.handlers = {
    prepareSweep: () => prepare(s.session, {}, false),
    apply: async (plan: Plan, point, model: string) => {
      // A point of a sweep of another model than the open one: its plan is over that model.
      if (resolve(s.session.path ?? '') !== resolve(model)) await s.session.open(model);
      // A whitened point is written with whitened factors (calibrated on the configured data, the
      // sweep's; the calibration cache serves the same selection), never as plain SVD.
      return writeAndOpen(s.session, plan, outputPathFor(model), undefined, point.method ?? 'svd');
    },
  };
}

export const showTradeoff: RankscopeCommand = {
  id: 'rankscope.showTradeoff',
  action: 'Show trade-off',
  run: async (s, ...args) => {
    wireTradeoff(s);
    const given = optionsArg<TradeoffOptions>(args);
    s.tradeoff.show();
    if (given.run === false) return undefined;
    const prepared = await prepare(s.session, given, Object.keys(given).length > 0);
    if (!prepared) return undefined;
    await s.tradeoff.runSweep(prepared);
    return s.tradeoff.points.length;
  },
};
