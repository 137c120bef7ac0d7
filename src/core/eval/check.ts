// `--check N`: N inputs through the original and the compressed model (ONNX Runtime, in EVAL's
// worker thread); the relative output deviation of each, max and mean. The inputs are the first
// N samples of the evaluation data when it is given, else random values of a shape the model
// fixes or the user gives (`--input-shape x=1x3x48x320`). A symbolic dimension is never guessed
// (a wrong guess such as 1 can make a wrecked model look exact): only a symbolic batch axis
// becomes 1; any other must come from the data, an --input-shape, or another input's given size
// for the same symbol; otherwise the check refuses and says how to fill it.
import { RankscopeError, throwIfCancelled } from '../errors';
import { OrtRunner, type OrtSession, type TensorInfo, type WireTensor } from './runner';
import { loadDataset, type DatasetSpec } from './dataset';
import { fixedBatchSize, padFeeds } from './evaluate';
import { shapeText } from './labels';
import { float16ToFloat32, float32ToFloat16 } from '../model/float16';
import type { Model } from '../model/types';

export interface CheckResult {
  samples: number;
  /** Per sample: max over outputs of max|y − y₀| / max|y₀|. */
  maxRelative: number;
  meanRelative: number;
  /** Where the inputs came from: 'random', or the data file. */
  source: 'random' | string;
  /** The dims fed to each input. */
  shapes: Record<string, number[]>;
}

export interface CheckOptions {
  signal?: AbortSignal;
  seed?: number;
  /** Feed the first samples of this data instead of random values (labels are not used). */
  data?: DatasetSpec;
  /** Dims for inputs with symbolic dimensions (random inputs only): input name → dims. */
  inputShapes?: Record<string, number[]>;
}

/** A xorshift generator: reproducible inputs for the same seed. */
function generator(seed: number): () => number {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2 ** 32;
  };
}

const HOW = 'Give its shape with --input-shape NAME=1x3x48x320 (every dimension), or check on real inputs with --data DATA.npz.';

/**
 * The dims to feed each input: fixed dims as they are; given shapes (checked against the fixed
 * dims); a symbol takes the size given for it on any input; a symbolic axis 0 is a batch of 1.
 * Anything else is a BAD_ARGUMENT naming the input, the dimension and how to fill it.
 */
export function inputDims(inputs: TensorInfo[], given: Record<string, number[]> = {}): Record<string, number[]> {
  for (const name of Object.keys(given)) {
    if (!inputs.some((i) => i.name === name)) {
      throw new RankscopeError('BAD_ARGUMENT', `--input-shape names '${name}', which is not a model input.`, `Its inputs: ${inputs.map((i) => i.name).join(', ')}.`);
    }
  }
  const symbols = new Map<string, number>();
  for (const input of inputs) {
    const dims = given[input.name];
    if (!dims) continue;
    if (dims.length !== input.shape.length || dims.some((d, a) => !(Number.isInteger(d) && d >= 1) || (isFixed(input.shape[a]) && input.shape[a] !== d))) {
      throw new RankscopeError('BAD_ARGUMENT', `--input-shape ${input.name}=${dims.join('x')} does not fit model input '${input.name}' ${shapeText(input.shape)}.`,
        'Give every dimension, positive, with the fixed ones as the model has them.');
    }
    input.shape.forEach((d, a) => { if (typeof d === 'string' && d) symbols.set(d, dims[a]); });
  }
  const out: Record<string, number[]> = {};
  for (const input of inputs) {
    out[input.name] = given[input.name] ?? input.shape.map((d, a) => {
      if (isFixed(d)) return d as number;
      if (typeof d === 'string' && d && symbols.has(d)) return symbols.get(d)!;
      if (a === 0) return 1; // the batch
      const what = typeof d === 'string' && d ? `symbolic dimension '${d}'` : 'an unknown dimension';
      throw new RankscopeError('BAD_ARGUMENT', `--check cannot make inputs for '${input.name}' ${shapeText(input.shape)}: axis ${a} is ${what}, and guessing it could hide a broken model.`, HOW);
    });
  }
  return out;
}

/**
 * The same resolution on the model's declared inputs, before any work: so a check that cannot
 * run is refused before the compressed model is written, not after.
 */
export function preflightCheck(model: Model, options: Pick<CheckOptions, 'data' | 'inputShapes'>): void {
  refuseBothSources(options);
  if (options.data) return; // the data gives the shapes; binding it checks them
  const inputs: TensorInfo[] = model.summary.inputs.map((i) => {
    if (!i.shape) throw new RankscopeError('BAD_ARGUMENT', `--check cannot make inputs for '${i.name}': the model does not give its shape.`, HOW);
    return { name: i.name, type: String(i.dtype), shape: i.shape.map((d) => d ?? '') };
  });
  inputDims(inputs, options.inputShapes);
}

function isFixed(d: number | string): boolean {
  return typeof d === 'number' && d >= 1;
}

/** Random feeds of the given dims: floats in [−1, 1), integers in [0, indexLimit) (valid embedding ids). */
export function randomFeeds(inputs: TensorInfo[], dimsOf: Record<string, number[]>, random: () => number, indexLimit: number): Record<string, WireTensor> {
  const feeds: Record<string, WireTensor> = {};
  for (const input of inputs) {
    const dims = dimsOf[input.name];
    const size = dims.reduce((a, b) => a * b, 1);
    const int = () => Math.floor(random() * indexLimit);
    let data: WireTensor['data'];
    switch (input.type) {
      case 'float32': data = Float32Array.from({ length: size }, () => random() * 2 - 1); break;
      case 'float64': data = Float64Array.from({ length: size }, () => random() * 2 - 1); break;
      case 'int64': data = BigInt64Array.from({ length: size }, () => BigInt(int())); break;
      case 'int32': data = Int32Array.from({ length: size }, int); break;
      case 'bool': case 'uint8': data = Uint8Array.from({ length: size }, () => (random() < 0.5 ? 1 : 0)); break;
      case 'float16': data = Uint16Array.from({ length: size }, () => float32ToFloat16(random() * 2 - 1)); break;
      default: throw new RankscopeError('UNSUPPORTED', `--check cannot make random ${input.type} inputs (${input.name}).`, 'Check on real inputs with --data DATA.npz.');
    }
    feeds[input.name] = { type: input.type, dims, data };
  }
  return feeds;
}

function toNumbers(t: WireTensor): Float64Array {
  if (t.type === 'float16') return Float64Array.from(t.data as Uint16Array, float16ToFloat32);
  return Float64Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** max over outputs of max|y − y₀| / max|y₀| for one run of both models. */
function deviation(ya: Record<string, WireTensor>, yb: Record<string, WireTensor>): number {
  let worst = 0;
  for (const [name, ref] of Object.entries(ya)) {
    const r = toNumbers(ref);
    const y = toNumbers(yb[name]);
    let scale = 0;
    let diff = 0;
    for (let j = 0; j < r.length; j++) {
      scale = Math.max(scale, Math.abs(r[j]));
      diff = Math.max(diff, Math.abs(r[j] - y[j]));
    }
    worst = Math.max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

function refuseBothSources(options: Pick<CheckOptions, 'data' | 'inputShapes'>): void {
  if (options.data && options.inputShapes && Object.keys(options.inputShapes).length) {
    throw new RankscopeError('BAD_ARGUMENT', '--input-shape is for random inputs; with --data the data gives the shapes.', 'Give one of --data or --input-shape.');
  }
}

export async function checkOutputs(original: Model, compressed: string | Uint8Array, samples: number, options: CheckOptions = {}): Promise<CheckResult> {
  refuseBothSources(options);
  const runner = OrtRunner.create({ signal: options.signal });
  try {
    const a = await runner.open(original.summary.path, 'original');
    const b = await runner.open(compressed, 'compressed');
    const runs = options.data ? await dataFeeds(a, options.data, samples, options.signal) : randomRuns(a, original, samples, options);
    let max = 0;
    let sum = 0;
    let count = 0;
    let shapes: Record<string, number[]> = {};
    for await (const feeds of runs.feeds) {
      throwIfCancelled(options.signal);
      shapes = Object.fromEntries(Object.entries(feeds).map(([name, t]) => [name, t.dims]));
      const worst = deviation(await a.run(feeds), await b.run(feeds));
      max = Math.max(max, worst);
      sum += worst;
      count++;
    }
    return { samples: count, maxRelative: max, meanRelative: count ? sum / count : 0, source: runs.source, shapes };
  } finally {
    await runner.dispose();
  }
}

interface Runs {
  source: CheckResult['source'];
  feeds: AsyncIterable<Record<string, WireTensor>>;
}

/** `samples` random feeds, dims resolved (and refused) before anything runs. */
function randomRuns(session: OrtSession, original: Model, samples: number, options: CheckOptions): Runs {
  const dims = inputDims(session.inputs, options.inputShapes);
  const random = generator(options.seed ?? 1);
  const vocab = original.layers.filter((l) => l.op === 'Gather').map((l) => l.shape[0]);
  const indexLimit = Math.max(1, Math.min(10, ...vocab));
  return {
    source: 'random',
    feeds: (async function* () {
      for (let i = 0; i < samples; i++) yield randomFeeds(session.inputs, dims, random, indexLimit);
    })(),
  };
}

/** The first `samples` samples of the data, one per run (padded to the model's fixed batch size). */
async function dataFeeds(session: OrtSession, spec: DatasetSpec, samples: number, signal?: AbortSignal): Promise<Runs> {
  const dataset = await loadDataset({ ...spec, labels: null }, session.inputs);
  const fixed = fixedBatchSize(session);
  return {
    source: spec.data,
    feeds: (async function* () {
      try {
        for (let i = 0; i < Math.min(samples, dataset.size); i++) {
          const batch = await dataset.batch(i, 1, signal);
          yield fixed ? padFeeds(batch.feeds, 1, fixed) : batch.feeds;
        }
        await dataset.verify(signal);
      } finally {
        await dataset.close();
      }
    })(),
  };
}
