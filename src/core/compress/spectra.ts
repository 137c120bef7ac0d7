// The entry point for "the spectra of these layers": dense and factorized layers alike, as one
// record (LINALG's LayerSpectrum). A factorized layer's spectrum is that of A·B (the singular
// values it keeps), which needs the factors' storage rules (storage.ts); LINALG's pool computes
// it like any other, cached by the factors' hash.
import { RankscopeError } from '../errors';
import { layerMatrices, type LayerMatrixData } from '../model/matrix';
import { computeSpectra, type ComputeSpectraOptions, type LayerSpectrum } from '../linalg';
import type { Layer, Model } from '../model/types';
import { multiply } from './factor';
import { entryOf } from './metadata';
import { layerHash } from './plan';
import { loadFactors } from './storage';

export type LayerSpectraOptions = Omit<ComputeSpectraOptions, 'factorized'>;

/**
 * Spectra of `options.layers` (default: every dense float layer), in LINALG's worker pool,
 * streamed through `onResult` in the requested order, cancellable, cached when `cacheDir` is set.
 */
export function layerSpectra(model: Model, options: LayerSpectraOptions = {}): Promise<LayerSpectrum[]> {
  return computeSpectra(model, { ...options, factorized: { hash: (layer) => layerHash(model, layer), matrices: (layer) => matricesOf(model, layer) } });
}

export interface PlanSpectraOptions {
  signal?: AbortSignal;
  /** LINALG's disk cache of spectra (the extension passes its storage folder). */
  cacheDir?: string;
  threads?: number;
}

/** Spectra for planning, in model order (for an already factorized layer: of A·B, as makePlan wants). */
export function planSpectra(model: Model, layers: Layer[], options: PlanSpectraOptions = {}): Promise<LayerSpectrum[]> {
  if (layers.length === 0) return Promise.resolve([]);
  return layerSpectra(model, { layers: layers.map((l) => l.name), order: 'module', signal: options.signal, cacheDir: options.cacheDir, threads: options.threads });
}

/**
 * Canonical [out, in] matrices per group; for a factorized layer, A·B (stored in the layer's layout,
 * per group). `transposeOk`: a dense in_out weight may come as stored, Wᵀ (model/matrix.ts).
 */
export function matricesOf(model: Model, layer: Layer, transposeOk = false): LayerMatrixData[] {
  if (!layer.compressed) return layerMatrices(model, layer, transposeOk);
  const [a, b] = layer.compressed.factors.map((n) => model.tensor(n));
  // Only our own record says for sure how the factors are stored.
  if (!entryOf(model, layer.name) || !a || !b) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' was factorized without a Rankscope record.`);
  return loadFactors(layer.layout, { dims: a.shape, data: a.toFloat32() }, { dims: b.shape, data: b.toFloat32() }, layer.groups ?? 1)
    .map((g) => ({ rows: g.m, cols: g.n, data: multiply(g.a, g.b, g.m, g.k, g.n) }));
}
