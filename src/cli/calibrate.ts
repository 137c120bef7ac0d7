// The calibration options compress, spectrum and sweep share (`--method whitened`): which data
// (the task's data options, or --calibration D.npz with the same input mapping), how many samples,
// the seed, the jitter and the embeddings' row weights; one function that runs the pass with
// progress on stderr and reports it.
import { RankscopeError } from '../core/errors';
import type { WhiteningSource } from '../core/compress';
import { calibrate, defaultCalibrationCacheDir, DEFAULT_CALIBRATION_SAMPLES, type Calibration } from '../core/eval/calibration';
import { resolveTask } from '../core/eval/task';
import type { OnnxModel } from '../core/formats/onnx';
import type { Layer } from '../core/model/types';
import type { CommandIO } from './command';
import { cliOverrides, intOption, oneOf, optionalNumber, taskFileFor } from './options';

export const METHODS = ['svd', 'whitened'] as const;
export type Method = (typeof METHODS)[number];

/** Options of the calibration pass (with TASK_OPTIONS for the data). */
export const CALIBRATION_OPTIONS = {
  calibration: { type: 'string' }, 'calibration-samples': { type: 'string' }, seed: { type: 'string' }, jitter: { type: 'string' },
  'whiten-embeddings': { type: 'boolean' },
} as const;

export const CALIBRATION_USAGE = `  --calibration D.npz  data for the calibration pass (default: --data, or "data" in rankscope.json);
                       --input NAME=ARRAY / --preset map its arrays as for eval
  --calibration-samples N  samples drawn for it (default ${DEFAULT_CALIBRATION_SAMPLES}, seeded; all when fewer)
  --seed S             the draw's seed (default 0)
  --jitter J           relative jitter for rank-deficient input Grams (default 1e-6 of λmax)
  --whiten-embeddings  weight a Gather embedding's rows by their calibration counts (default:
                       uniform rows, the plain SVD's factors; docs/whitened.md says why)`;

type Values = Record<string, string | string[] | boolean | undefined>;

export function methodOption(text: string | undefined): Method {
  return oneOf(text, '--method', METHODS) ?? 'svd';
}

/** Runs the calibration pass over `layers` with the data the options name; reports it on io. */
export async function runCalibration(model: OnnxModel, layers: Layer[], values: Values, io: CommandIO, noCache = false): Promise<{ calibration: Calibration; whitening: WhiteningSource }> {
  // compress's -o/--output is its output path, not the scored output of a task.
  const task = resolveTask(await taskFileFor(values.task as string | undefined), { ...cliOverrides({ ...values, output: undefined }) });
  const file = values.calibration as string | undefined;
  const spec = file ? { ...(task.dataset ?? {}), data: file } : task.dataset;
  if (!spec) {
    throw new RankscopeError('BAD_ARGUMENT', 'whitened factorization needs calibration data: give --data D.npz or --calibration D.npz (or "data" in rankscope.json).',
      'The calibration pass runs a few hundred samples through the model to measure each layer\'s inputs.');
  }
  if (!layers.length) throw new RankscopeError('BAD_ARGUMENT', 'No layer to calibrate.', 'Select factorizable layers with --layers.');
  const samples = values['calibration-samples'] === undefined ? undefined : intOption(values['calibration-samples'] as string, '--calibration-samples');
  const seed = values.seed === undefined ? 0 : intOption(values.seed as string, '--seed', 0);
  const jitter = optionalNumber(values.jitter as string | undefined, '--jitter');
  if (jitter !== undefined && !(jitter > 0 && jitter < 1)) throw new RankscopeError('BAD_ARGUMENT', `--jitter must be in (0, 1); got ${jitter}.`);
  const tty = process.stderr.isTTY;
  const calibration = await calibrate(model, layers, { ...spec, labels: null }, {
    samples, seed, batchSize: task.batchSize, ep: task.ep, threads: task.threads, signal: io.signal,
    cacheDir: noCache ? undefined : defaultCalibrationCacheDir(),
    onProgress: (_done, _total, message) => { if (tty) process.stderr.write(`\r\x1b[K${message}`); },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  io.out(`calibration: ${calibration.samples} samples of ${calibration.data} (seed ${seed}), ${calibration.grams.size} layers, ${calibration.seconds.toFixed(1)} s${calibration.cached ? ' (cached)' : ''}`);
  return {
    calibration,
    whitening: {
      grams: calibration.grams, jitter, embeddings: values['whiten-embeddings'] === true ? 'counts' : 'uniform',
      calibration: { hash: calibration.key, data: calibration.data, samples: calibration.samples, seed },
    },
  };
}
