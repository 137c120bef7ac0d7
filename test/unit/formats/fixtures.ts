// Fixture models for the ONNX tests, built by the tests themselves with Python's `onnx`
// (an independent writer) and run with onnxruntime-node (the real runtime).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { runPython } from '../../helpers/python';

export function tempDir(prefix = 'rankscope-onnx-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Builds zoo.onnx (one branch per layer kind) in `dir`; returns its path and numpy's expected matrices. */
export function buildZoo(dir: string): { path: string; expected: Record<string, number[][]> } {
  runPython(readFileSync(join(__dirname, 'zoo.py'), 'utf8'), [dir]);
  return { path: join(dir, 'zoo.onnx'), expected: JSON.parse(readFileSync(join(dir, 'zoo_expected.json'), 'utf8')) };
}

/** Deterministic inputs for every graph input (shapes from the model; int64 inputs get small indices). */
export function makeInputs(session: ort.InferenceSession): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 1;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const size = shape.reduce((a, b) => a * b, 1);
    if (meta.type === 'int64') feeds[meta.name] = new ort.Tensor('int64', BigInt64Array.from({ length: size }, (_, i) => BigInt(i % 7)), shape);
    else if (meta.type === 'float64') feeds[meta.name] = new ort.Tensor('float64', Float64Array.from({ length: size }, next), shape);
    else feeds[meta.name] = new ort.Tensor('float32', Float32Array.from({ length: size }, next), shape);
  }
  return feeds;
}

export async function runModel(path: string, feeds: (s: ort.InferenceSession) => Record<string, ort.Tensor> = makeInputs): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  try {
    return await session.run(feeds(session));
  } finally {
    await session.release();
  }
}
