// What every compress path shares (the Compress Layer… QuickPick, the budget command, the
// spectrum panel's "Compress at this rank", the trade-off view's "Apply"): plan through the core,
// write a NEW file next to the model (never over it), open it in the tree and say what changed.
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../core/errors';
import { outputPathProblem } from '../core/fs/atomicWrite';
import { compressToFile, graphCheck, type WhiteningSource } from '../core/compress/apply';
import { calibrate, defaultCalibrationCacheDir } from '../core/eval/calibration';
import type { DatasetSpec } from '../core/eval/dataset';
import { readTaskFile, resolveTask } from '../core/eval/task';
import { isCompressible, makePlan, type CompressRequest, type Plan } from '../core/compress/plan';
import { OnnxModel } from '../core/formats/onnx';
import { nextFreeOutputPath } from '../core/outputPath';
import type { Model } from '../core/model/types';
import { formatCount, formatPercent, formatSaved } from '../core/format';
import { log, noLinks } from './log';
import type { ModelSession } from './session';
import { taskFilePath } from './evalTask';

/** How the factors are made: plain SVD of W, or whitened by each layer's input statistics (docs/whitened.md). */
export type CompressMethod = 'svd' | 'whitened';

/** The evaluation data rankscope.json configures for the model (the calibration data of 'whitened'), if any. */
export async function calibrationData(session: ModelSession): Promise<DatasetSpec | undefined> {
  const path = taskFilePath(session.path);
  if (!path || !existsSync(path)) return undefined;
  const task = resolveTask(await readTaskFile(path));
  return task.dataset && { ...task.dataset, labels: null };
}

/** Asks plain vs whitened, only when evaluation data is configured (else plain, no prompt); undefined: cancelled. */
export async function pickMethod(session: ModelSession): Promise<CompressMethod | undefined> {
  const data = await calibrationData(session).catch(() => undefined);
  if (!data) return 'svd';
  const picked = await vscode.window.showQuickPick([
    { label: 'Plain SVD', detail: 'Keep the directions of largest weight energy', method: 'svd' as const },
    { label: 'Whitened by the evaluation data', detail: `Keep what the layers' inputs use (SVD-LLM): a calibration pass on ${basename(data.data)} first`, method: 'whitened' as const },
  ], { title: 'Factorization method', placeHolder: 'How the low-rank factors are made' });
  return picked?.method;
}

/** The next free `model.<suffix>.onnx` next to the model (core's one naming rule). */
export function outputPathFor(modelPath: string, suffix = 'rankscope'): string {
  return nextFreeOutputPath(modelPath, suffix);
}

export function onnxModel(model: Model): OnnxModel {
  if (!(model instanceof OnnxModel)) throw new RankscopeError('UNSUPPORTED', 'Compressing in the editor works on ONNX models.', 'For a PyTorch checkpoint or safetensors file run `rankscope compress MODEL -o MODEL.lowrank.safetensors` (docs/pytorch.md).');
  return model;
}

/** The plan for `request` over the open model, computing the selected layers' spectra first. */
export async function planFor(session: ModelSession, request: CompressRequest, signal?: AbortSignal): Promise<Plan> {
  const model = onnxModel(session.requireModel());
  const names = request.layers ?? model.layers.filter(isCompressible).map((l) => l.name);
  const spectra = await session.ensureSpectra(names, signal);
  return makePlan(model, spectra, { ...request, layers: names }, graphCheck(model));
}

/** One line for a QuickPick detail or a notification: `1.2M → 450K params (−62 %), 95.0 % energy kept`. */
export function planSummary(plan: Plan): string {
  const t = plan.totals;
  const active = plan.layers.filter((l) => !l.skipped);
  const before = active.reduce((a, l) => a + l.paramsBefore, 0);
  // Energy kept over the compressed layers, weighted by their ‖W‖² share is not known here;
  // the minimum is the honest single number (no layer keeps less).
  const energy = active.length ? Math.min(...active.map((l) => l.energyKept)) : 1;
  if (t.compressed === 0) return `no layer would shrink${t.skipped ? ` (${t.skipped} skipped)` : ''}`;
  return `${formatCount(t.modelParamsBefore)} → ${formatCount(t.modelParamsAfter)} params (${formatSaved(t.modelParamsBefore, t.modelParamsAfter)}), `
    + `${t.compressed} layer${t.compressed === 1 ? '' : 's'} ${formatCount(before)} → ${formatCount(active.reduce((a, l) => a + l.paramsAfter, 0))}, `
    + `≥ ${formatPercent(energy)} energy kept`;
}

/** Writes the plan's model to `outPath`, opens it in the tree and reports the change. */
export async function writeAndOpen(session: ModelSession, plan: Plan, outPath: string, signal?: AbortSignal, method: CompressMethod | WhiteningSource = 'svd', report?: (message: string) => void): Promise<string> {
  const model = onnxModel(session.requireModel());
  if (plan.totals.compressed === 0) {
    const reasons = plan.layers.filter((l) => l.skipped).map((l) => `${l.layer}: ${l.reason}`).slice(0, 3).join('; ');
    throw new RankscopeError('BAD_ARGUMENT', `Nothing to compress: no selected layer would get smaller (${reasons}).`,
      'Pick a lower rank or energy, or other layers.');
  }
  const t0 = performance.now();
  const whitening = method === 'whitened' ? await whiteningFor(session, activeLayers(plan), signal, report) : method === 'svd' ? undefined : method;
  report?.('writing');
  const written = await compressToFile(model, plan, outPath, { signal, whitening });
  log().info(`Compressed ${plan.totals.compressed} layer(s) of ${model.summary.path} → ${written.path} in ${(performance.now() - t0).toFixed(0)} ms`);
  for (const l of plan.layers) {
    log().info(l.skipped
      ? `  ${l.layer}: kept dense (${l.reason})`
      : `  ${l.layer}: rank ${l.k}, ${l.paramsBefore} → ${l.paramsAfter} params, ${formatPercent(l.energyKept, 2)} energy kept`);
  }
  await session.open(written.path, signal);
  const changed = plan.layers.filter((l) => !l.skipped);
  const detail = changed.length <= 3
    ? changed.map((l) => `${l.layer} at rank ${l.k} (${formatCount(l.paramsBefore)} → ${formatCount(l.paramsAfter)}, ${formatPercent(l.energyKept)} energy)`).join('; ')
    : planSummary(plan);
  void vscode.window.showInformationMessage(
    noLinks(`Rankscope: wrote ${basename(written.path)}: ${detail}.`),
    'Show Log',
  ).then((c) => c === 'Show Log' && log().show(true));
  // Show what changed: the (first) compressed layer, selected in the tree of the new model.
  if (changed[0]) void vscode.commands.executeCommand('rankscope.showInLayers', changed[0].layer, { quiet: true });
  return written.path;
}

function activeLayers(plan: Plan): string[] {
  return plan.layers.filter((l) => !l.skipped).map((l) => l.layer);
}

/** The calibration pass over `layers` on the configured data (ONNX Runtime in its worker; cached on disk). */
export async function whiteningFor(session: ModelSession, layers: string[], signal?: AbortSignal, report?: (message: string) => void): Promise<WhiteningSource> {
  const model = onnxModel(session.requireModel());
  const data = await calibrationData(session);
  if (!data) throw new RankscopeError('BAD_ARGUMENT', 'Whitened factorization needs calibration data: no "data" in rankscope.json.', 'Run "Rankscope: Configure Evaluation Data…" first.');
  const names = new Set(layers);
  const c = await calibrate(model, model.layers.filter((l) => names.has(l.name)), data, {
    signal, cacheDir: defaultCalibrationCacheDir(), onProgress: (_d, _t, message) => report?.(message),
  });
  log().info(`Calibration: ${c.samples} samples of ${c.data} for ${c.grams.size} layer(s) in ${c.seconds.toFixed(1)} s${c.cached ? ' (cached)' : ''}`);
  for (const note of c.notes) log().info(`  ${note}`);
  return { grams: c.grams, calibration: { hash: c.key, data: c.data, samples: c.samples, seed: c.seed } };
}

/**
 * Asks for the output file of a command that writes a model, proposing the next free
 * `model.<suffix>.onnx`; existing files and the input are refused (Rankscope never overwrites).
 */
export async function askOutputPath(modelPath: string, suffix = 'rankscope', title = 'Write the compressed model to'): Promise<string | undefined> {
  const proposed = outputPathFor(modelPath, suffix);
  const value = await vscode.window.showInputBox({
    title,
    value: proposed,
    valueSelection: [dirname(proposed).length + 1, proposed.length - '.onnx'.length],
    validateInput: (v) => {
      if (!v.toLowerCase().endsWith('.onnx')) return 'The file name must end in .onnx';
      const problem = outputPathProblem(v, { inputs: [modelPath] });
      if (problem) return problem;
      if (existsSync(v)) return 'This file exists; Rankscope does not overwrite files. Choose another name.';
      return undefined;
    },
  });
  return value?.trim() || undefined;
}
