// `--check N`: N random inputs through the original and the compressed model (ONNX Runtime, in
// EVAL's worker thread); the relative output deviation of each, max and mean.
import { throwIfCancelled } from '../errors';
import { OrtRunner, type TensorInfo, type WireTensor } from '../eval/runner';
import { float16ToFloat32, float32ToFloat16 } from '../model/float16';
import type { Model } from '../model/types';

export interface CheckResult {
  samples: number;
  /** Per sample: max over outputs of max|y − y₀| / max|y₀|. */
  maxRelative: number;
  meanRelative: number;
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

/** Random feeds for the session's inputs: floats in [−1, 1), integers in [0, indexLimit) (valid embedding ids). */
export function randomFeeds(inputs: TensorInfo[], random: () => number, indexLimit: number): Record<string, WireTensor> {
  const feeds: Record<string, WireTensor> = {};
  for (const input of inputs) {
    const dims = input.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
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
      default: throw new Error(`--check cannot make random ${input.type} inputs (${input.name})`);
    }
    feeds[input.name] = { type: input.type, dims, data };
  }
  return feeds;
}

function toNumbers(t: WireTensor): Float64Array {
  if (t.type === 'float16') return Float64Array.from(t.data as Uint16Array, float16ToFloat32);
  return Float64Array.from(t.data as ArrayLike<number | bigint>, Number);
}

export async function checkOutputs(original: Model, compressed: string | Uint8Array, samples: number, options: { signal?: AbortSignal; seed?: number } = {}): Promise<CheckResult> {
  const runner = OrtRunner.create({ signal: options.signal });
  try {
    const a = await runner.open(original.summary.path, 'original');
    const b = await runner.open(compressed, 'compressed');
    const random = generator(options.seed ?? 1);
    const vocab = original.layers.filter((l) => l.op === 'Gather').map((l) => l.shape[0]);
    const indexLimit = Math.max(1, Math.min(10, ...vocab));
    let max = 0;
    let sum = 0;
    for (let i = 0; i < samples; i++) {
      throwIfCancelled(options.signal);
      const feeds = randomFeeds(a.inputs, random, indexLimit);
      const [ya, yb] = [await a.run(feeds), await b.run(feeds)];
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
      max = Math.max(max, worst);
      sum += worst;
    }
    return { samples, maxRelative: max, meanRelative: samples ? sum / samples : 0 };
  } finally {
    await runner.dispose();
  }
}
