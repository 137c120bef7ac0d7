// Spectra for planning: dense layers through LINALG, factorized layers from the product A·B
// (its singular values are the ones the layer keeps).
import { RankscopeError, throwIfCancelled } from '../errors';
import type { OnnxModel } from '../formats/onnx';
import { layerMatrices } from '../model/matrix';
import { computeSpectra, singularValues } from '../linalg';
import type { Layer, Model } from '../model/types';
import { multiply } from './factor';
import { entryOf } from './metadata';
import type { SpectrumLike } from './plan';
import { loadFactors } from './storage';

export interface PlanSpectraOptions {
  signal?: AbortSignal;
  /** LINALG's disk cache of spectra (the extension passes its storage folder). */
  cacheDir?: string;
  threads?: number;
}

export async function planSpectra(model: OnnxModel, layers: Layer[], options: PlanSpectraOptions = {}): Promise<SpectrumLike[]> {
  const dense = layers.filter((l) => !l.compressed).map((l) => l.name);
  const out: SpectrumLike[] = dense.length
    ? // (onResult given: computeSpectra's flush loop only advances when there is one)
      await computeSpectra(model, { layers: dense, order: 'module', signal: options.signal, cacheDir: options.cacheDir, threads: options.threads, onResult: () => undefined })
    : [];
  // Factorized layers: A·B has rank k, small next to the dense work; computed here.
  for (const layer of layers.filter((l) => l.compressed)) {
    throwIfCancelled(options.signal);
    const groups = matricesOf(model, layer).map((m) => singularValues(m.data, m.rows, m.cols, layer.name));
    out.push({ layer: layer.name, singularValues: Float64Array.from(groups.flatMap((g) => [...g])).sort().reverse(), groups: groups.length > 1 ? groups : undefined });
  }
  return out;
}

/** Canonical [out, in] matrices per group; for a factorized layer, A·B (stored in the layer's layout, per group). */
export function matricesOf(model: Model, layer: Layer): { rows: number; cols: number; data: Float32Array | Float64Array }[] {
  if (!layer.compressed) return layerMatrices(model, layer);
  const [a, b] = layer.compressed.factors.map((n) => model.tensor(n));
  // Only our own record says for sure how the factors are stored.
  if (!entryOf(model, layer.name) || !a || !b) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' was factorized without a Rankscope record.`);
  return loadFactors(layer.layout, { dims: a.shape, data: a.toFloat32() }, { dims: b.shape, data: b.toFloat32() }, layer.groups ?? 1)
    .map((g) => ({ rows: g.m, cols: g.n, data: multiply(g.a, g.b, g.m, g.k, g.n) }));
}
