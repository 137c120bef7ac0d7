// Spectra for planning: dense layers through LINALG, factorized layers from the product A·B
// (its singular values are the ones the layer keeps).
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import { RankscopeError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../formats/onnx';
import { layerMatrices } from '../model/matrix';
import type { Layer } from '../model/types';
import { multiply } from './factor';
import { entryOf } from './metadata';
import type { SpectrumLike } from './plan';
import { loadFactors } from './storage';

// TEMPORARY until LINALG's singularValues lands: ml-matrix.
function singularValues(data: Float32Array | Float64Array, rows: number, cols: number): Float64Array {
  const m = new Matrix(rows, cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) m.set(i, j, data[i * cols + j]);
  return Float64Array.from(new SingularValueDecomposition(m, { computeLeftSingularVectors: false, computeRightSingularVectors: false, autoTranspose: true }).diagonal);
}

export async function planSpectra(model: OnnxModel, layers: Layer[], options: { signal?: AbortSignal } = {}): Promise<SpectrumLike[]> {
  const out: SpectrumLike[] = [];
  for (const layer of layers) {
    throwIfCancelled(options.signal);
    const groups = matricesOf(model, layer).map((m) => singularValues(m.data, m.rows, m.cols));
    out.push({ layer: layer.name, singularValues: groups.length === 1 ? groups[0] : Float64Array.from(groups.flatMap((g) => [...g])).sort().reverse(), groups: groups.length > 1 ? groups : undefined });
  }
  return out;
}

/** Canonical [out, in] matrices per group; for a factorized layer, A·B. */
export function matricesOf(model: OnnxModel, layer: Layer): { rows: number; cols: number; data: Float32Array | Float64Array }[] {
  if (!layer.compressed) return layerMatrices(model, layer);
  const entry = entryOf(model, layer.name);
  const [a, b] = layer.compressed.factors.map((n) => model.tensor(n));
  if (!entry || !a || !b) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' was factorized without a Rankscope record.`);
  return loadFactors(entry.layout, { dims: a.shape, data: a.toFloat32() }, { dims: b.shape, data: b.toFloat32() }, entry.groups)
    .map((g) => ({ rows: g.m, cols: g.n, data: multiply(g.a, g.b, g.m, g.k, g.n) }));
}
