// Show Accuracy/Size Trade-off: opens the trade-off panel and runs EVAL's sweep on the open model
// with the workspace's evaluation data (rankscope.json; asks for it when missing). Points stream in
// as they are measured; a point's "Apply" writes that compressed model.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { TradeoffPoint } from '../../../webview/tradeoff/protocol';
import { RankscopeError } from '../../core/errors';
import { isCompressible, type Plan } from '../../core/compress/plan';
import { loadDataset, type Dataset } from '../../core/eval/dataset';
import { OrtRunner } from '../../core/eval/runner';
import { runSweep, type SweepPoint, type SweepSpec } from '../../core/eval/sweep';
import { resolveTask } from '../../core/eval/task';
import type { LayerSpectrum } from '../../core/linalg';
import { onnxModel, outputPathFor, writeAndOpen } from '../compress';
import { readWorkspaceTask } from '../evalTask';
import { log } from '../log';
import type { ModelSession } from '../session';
import { settings } from '../settings';
import type { SweepRunner } from '../webviews/tradeoffPanel';
import type { RankscopeCommand, Services } from './command';
import { optionsArg } from './layerArgs';

export interface TradeoffOptions {
  /** Run the sweep at once (default true when data is configured). */
  run: boolean;
  /** Sweep levels, overriding rankscope.json's `sweep`. */
  spec: SweepSpec;
  /** Evaluate only the first N samples (tests, quick looks). */
  limit: number;
}

const DEFAULT_SPEC: SweepSpec = { levels: [0.25, 0.5, 0.75], allocations: ['energy', 'uniform'], energies: [0.9, 0.95, 0.99] };

function toPoint(p: SweepPoint): TradeoffPoint {
  return {
    id: p.id,
    allocation: p.allocation ?? 'energy',
    label: p.label,
    params: p.params,
    fileSize: p.fileSize,
    latencyMs: p.latency?.medianMs,
    accuracy: p.metrics.top1 ?? p.score,
  };
}

/** The sweep for the open model, or undefined when the user backed out of configuring data. */
async function prepare(session: ModelSession, given: Partial<TradeoffOptions>): Promise<{ title: string; run: SweepRunner; spectra: () => LayerSpectrum[] } | undefined> {
  const model = onnxModel(session.requireModel());
  let task = await readWorkspaceTask(session.path);
  if (!task?.task.data) {
    const choice = await vscode.window.showInformationMessage(
      'Rankscope: the trade-off needs evaluation data (an .npz with inputs and labels).', 'Configure Evaluation Data…');
    if (!choice) return undefined;
    await vscode.commands.executeCommand('rankscope.configureEvalData');
    task = await readWorkspaceTask(session.path);
    if (!task?.task.data) return undefined;
  }
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
  };
  let spectra: LayerSpectrum[] = [];
  const run: SweepRunner = async (signal, sink) => {
    sink.progress({ done: 0, total: 1, message: 'computing spectra' });
    const names = model.layers.filter(isCompressible).map((l) => l.name);
    spectra = await session.ensureSpectra(names, signal);
    // No signal for the runner: aborting it terminates its thread, and terminating a thread
    // inside a native ONNX Runtime run took the whole extension host down (seen in the
    // integration suite). The sweep checks `signal` between batches and points instead.
    const runner = OrtRunner.create({ ep: resolved.ep, intraOpThreads: resolved.threads });
    let dataset: Dataset | undefined;
    try {
      const ort = await runner.open(model.summary.path);
      dataset = await loadDataset(dataSpec, ort.inputs);
      await ort.close();
      const result = await runSweep(spec, {
        model, spectra, dataset, runner, metric: resolved.metric, batchSize: resolved.batchSize, output: resolved.output,
        latency: resolved.latency, cacheDir: session.cacheDir(), signal,
        onProgress: (p) => sink.progress(p),
        onPoint: (p) => {
          if (p.kind === 'original') {
            sink.original({ params: p.params, fileSize: p.fileSize, latencyMs: p.latency?.medianMs, accuracy: p.metrics.top1 ?? p.score, name: basename(model.summary.path) });
          } else {
            sink.point(toPoint(p), p.plan!);
          }
        },
      });
      log().info(`Sweep of ${result.model}: ${result.points.length} points in ${result.timing.total.toFixed(1)} s (${result.timing.cachedPoints} cached); Pareto front ${result.front.length}`);
    } finally {
      await dataset?.close();
      await runner.dispose();
    }
  };
  return { title: `${basename(model.summary.path)} on ${basename(dataSpec.data)}`, run, spectra: () => spectra };
}

export function wireTradeoff(s: Services): void {
  s.tradeoff.handlers = {
    prepareSweep: () => prepare(s.session, {}),
    apply: (plan: Plan) => writeAndOpen(s.session, plan, outputPathFor(s.session.path!)),
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
    const prepared = await prepare(s.session, given);
    if (!prepared) return undefined;
    await s.tradeoff.runSweep(prepared.title, prepared.run);
    return s.tradeoff.points.length;
  },
};
