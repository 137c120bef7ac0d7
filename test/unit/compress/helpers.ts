// Shared by the compress tests: fixture models built by Python's onnx, ONNX Runtime runs, deviations.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { runPython } from '../../helpers/python';
import { float32ToFloat16, float16ToFloat32 } from '../../../src/core/model/float16';

export const FIXTURES = ['matmul', 'gemm', 'gemm_opset9', 'conv', 'embedding', 'shared', 'fp16', 'cast'] as const;
/** Fixtures whose weights are stored as float16 (their factors too): looser tolerances. */
export const HALF_FIXTURES: readonly string[] = ['fp16', 'cast'];
export type Manifest = Record<string, { inputs: Record<string, [number[], 'float32' | 'float16' | 'int64']> }>;

/** Builds the fixture models into `dir` (rank 0: full-rank weights; r: every weight exactly rank r). */
export function buildFixtures(dir: string, rank: number): Manifest {
  mkdirSync(dir, { recursive: true });
  runPython(readFileSync(join(__dirname, 'fixtures', 'build_models.py'), 'utf8'), [dir, String(rank)]);
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
}

/** Deterministic pseudo-random feeds for a fixture's inputs. */
export function randomFeeds(inputs: Manifest[string]['inputs'], seed: number): Record<string, ort.Tensor> {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2 ** 32;
  };
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, [shape, dtype]] of Object.entries(inputs)) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'int64') feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: size }, () => BigInt(Math.floor(next() * 100))), shape);
    else if (dtype === 'float16') feeds[name] = new ort.Tensor('float16', Uint16Array.from({ length: size }, () => float32ToFloat16(next() * 2 - 1)), shape);
    else feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: size }, () => next() * 2 - 1), shape);
  }
  return feeds;
}

export async function runModel(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float64Array>> {
  const session = await ort.InferenceSession.create(path);
  try {
    const result = await session.run(feeds);
    const out: Record<string, Float64Array> = {};
    for (const [name, t] of Object.entries(result)) {
      out[name] = t.type === 'float16' ? Float64Array.from(t.data as Uint16Array, float16ToFloat32) : Float64Array.from(t.data as Float32Array);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** max |y − ref| / max |ref| over every output: the relative deviation the tests bound. */
export function relativeDeviation(ref: Record<string, Float64Array>, y: Record<string, Float64Array>): number {
  let worst = 0;
  for (const [name, r] of Object.entries(ref)) {
    const v = y[name];
    if (!v || v.length !== r.length) throw new Error(`output ${name}: shape changed`);
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < r.length; i++) {
      scale = Math.max(scale, Math.abs(r[i]));
      diff = Math.max(diff, Math.abs(r[i] - v[i]));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}
