// The steps `rankscope demo` and its results table (resultsTable.ts) share: the run's context,
// the data of one split of the NTU-layout file, the whitened calibration on training samples,
// the interpreter for fine-tuning, and one fine-tuning run with the demo's training choices.
import { join } from 'node:path';
import { RankscopeError } from '../core/errors';
import type { Plan, WhiteningSource } from '../core/compress';
import { calibrate } from '../core/eval/calibration';
import { loadDataset, type Dataset } from '../core/eval/dataset';
import type { OrtRunner } from '../core/eval/runner';
import type { SweepPoint } from '../core/eval/sweep';
import { checkDiscoveredEnvironment, type EnvReport } from '../worker/envCheck';
import { finetune, type FinetuneResult } from '../worker/finetune';
import type { WorkerMessage } from '../worker/protocol';
import type { Layer } from '../core/model/types';
import type { OnnxModel } from '../core/formats/onnx';
import type { CommandIO } from './command';

export interface Context {
  io: CommandIO;
  model: string;
  data: string;
  out: string;
  epochs: number;
  threads: number;
  ci: boolean;
  python?: string;
}

export const FINETUNE_LR = 5e-4;

export const pct = (x: number | undefined | null) => (x === undefined || x === null ? '—' : `${(x * 100).toFixed(2)} %`);
export const num = (x: number) => x.toLocaleString('en-US');
export const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

/**
 * One split of the NTU-layout file (x_<split>, y_<split>) bound to the model's single input,
 * whatever the input is named; labels: null leaves them out (a calibration or shape sample).
 */
export async function openData(runner: OrtRunner, ctx: Pick<Context, 'model' | 'data'>, split: 'train' | 'test' = 'test', labels = true): Promise<Dataset> {
  const probe = await runner.open(ctx.model);
  try {
    if (probe.inputs.length !== 1) throw new RankscopeError('UNSUPPORTED', `${ctx.model}: the demo feeds one input (the skeleton sequence); this model has ${probe.inputs.length}.`);
    return await loadDataset({ data: ctx.data, preset: 'ntu', labels: labels ? `y_${split}` : null, inputs: { [probe.inputs[0].name]: `x_${split}` } }, probe.inputs);
  } finally {
    await probe.close();
  }
}

/** Training samples the whitened calibration draws (seeded). */
export const CALIBRATION_SAMPLES = 256;

/**
 * The calibration the whitened method and allocation use, on `train` (the TRAINING split: what
 * chooses ranks or factors never sees the test split the demo scores); cached in DIR/.cache/calibration.
 */
export async function calibrateOnTraining(model: OnnxModel, layers: Layer[], train: Dataset, runner: OrtRunner, ctx: Pick<Context, 'io' | 'out'>): Promise<WhiteningSource> {
  const t = performance.now();
  const c = await calibrate(model, layers, train, { samples: CALIBRATION_SAMPLES, seed: 0, runner, cacheDir: join(ctx.out, '.cache', 'calibration'), signal: ctx.io.signal });
  ctx.io.out(`calibration: ${c.samples} training samples, ${c.grams.size} layers (${((performance.now() - t) / 1000).toFixed(0)} s${c.cached ? ', cached' : ''})`);
  return { grams: c.grams, calibration: { hash: c.key, data: c.data, samples: c.samples, seed: c.seed } };
}

/** The plan a sweep point measured (the original has none). */
export function planOf(point: SweepPoint): Plan {
  if (!point.plan) throw new RankscopeError('BAD_ARGUMENT', `sweep point '${point.label}' has no plan.`);
  return point.plan;
}

/**
 * The interpreter for fine-tuning, found as `rankscope finetune` finds it (pythonDiscovery.ts:
 * --python, $RANKSCOPE_PYTHON, the active venv/conda, PATH, /usr/bin/python3; the first with
 * PyTorch), then checked. Sets ctx.python.
 */
export async function findTorch(ctx: Context): Promise<EnvReport> {
  const first = ctx.python ? [{ path: ctx.python, source: '--python' }] : [];
  const report = await checkDiscoveredEnvironment(first, 'Give --python PATH (a Python 3 with torch and numpy).', { signal: ctx.io.signal });
  if (report.discovery?.chosen) {
    ctx.python = report.discovery.chosen.executable;
    ctx.io.out(`(Python for fine-tuning: ${ctx.python}, ${report.discovery.chosen.source})`);
  }
  return report;
}

/** One fine-tuning run (distilled from `teacher` when given) with the demo's choices; the rest are TRAINING_DEFAULTS. */
export async function runFinetune(ctx: Context, model: string, out: string, teacher: string | undefined): Promise<FinetuneResult> {
  const r = await finetune({
    model, out, teacher, worker: { python: ctx.python }, data: { path: ctx.data, preset: 'ntu' },
    training: {
      kd: teacher ? { alpha: 0.7 } : null, epochs: ctx.epochs, lr: FINETUNE_LR, batchSize: 32, schedule: 'cosine', seed: 1, device: 'cpu', progressEvery: 30,
    },
  }, {
    signal: ctx.io.signal,
    onMessage: (m: WorkerMessage) => {
      if (m.type === 'eval' && m.phase === 'before') ctx.io.out(`  before: val top-1 ${pct(m.valAccuracy)}`);
      if (m.type === 'eval' && m.phase === 'epoch') ctx.io.out(`  epoch ${m.epoch}/${ctx.epochs}: train loss ${m.trainLoss.toFixed(4)}, val top-1 ${pct(m.valAccuracy)} (${m.seconds.toFixed(0)} s)`);
      if (m.type === 'log' && (m.level === 'warn' || m.level === 'error')) ctx.io.err(`  worker: ${m.message}`);
    },
  });
  if (r.status !== 'completed' || !r.output) throw new RankscopeError('CANCELLED', 'Fine-tuning was cancelled.');
  return r;
}
