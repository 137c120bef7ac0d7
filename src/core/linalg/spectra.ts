// computeSpectra: the singular values and metrics of a model's layers, computed in a pool of
// worker threads sized to the cores (never on the caller's thread), streamed back layer by layer
// in the requested order, cancellable, and cached on disk by tensor hash. Dense weights are read
// here; factorized layers need a reader from compress (their A·B): compress/spectra.ts
// layerSpectra is the entry point that passes it.
import { RankscopeError, throwIfCancelled } from '../errors';
import { layerMatrices, type LayerMatrixData } from '../model/matrix';
import { FACTORIZABLE_DTYPES, type Layer, type Model } from '../model/types';
import { SpectrumCache, DEFAULT_CACHE_MAX_BYTES } from './cache';
import { spectrumMetrics, type SpectrumMetrics } from './metrics';
import { mergeDescending } from './singularValues';
import { worthATeam } from './team';
import { runWorkerPool, workerEntry, type PoolFailure } from './workerPool';

export interface LayerSpectrum {
  layer: string;
  /** Cache key: hash of the values (the tensor's bytes; both factors' for a factorized layer) and the matrix view. */
  hash: string;
  /** The matrix [out, in] (for grouped convs: the whole [out, in/groups·∏k]). */
  shape: [number, number];
  /** All singular values, descending. Grouped convs: of the block-diagonal operator (all groups). */
  singularValues: Float64Array;
  /** Grouped convs only: each group's singular values, descending. */
  groups?: Float64Array[];
  metrics: SpectrumMetrics;
}

export interface ComputeSpectraOptions {
  /** Layer names; default: every layer with float weights that is not already factorized. */
  layers?: string[];
  /** 'size': largest first (what a user looks at first); 'module': model order. Default 'size'. */
  order?: 'size' | 'module';
  signal?: AbortSignal;
  /** Where to cache results; no cache when absent. */
  cacheDir?: string;
  cacheMaxBytes?: number;
  /** Worker threads; default: the cores available. */
  threads?: number;
  /** Called for each layer, strictly in the requested order. */
  onResult?: (result: LayerSpectrum) => void;
  /** Reads factorized layers (compress/spectra.ts passes A·B); without it they are refused. */
  factorized?: LayerReader;
}

/** How a layer's values are read for its spectrum. */
export interface LayerReader {
  /** Identifies the values (keys the cache with the matrix view). */
  hash(layer: Layer): string;
  /** Canonical [out, in] matrices (or, `transposed`, their transposes), one per conv group, each owning its buffer. */
  matrices(layer: Layer): LayerMatrixData[];
}

/** Message to a spectra worker. */
export interface SpectraJob {
  id: number;
  label: string;
  /** The layer's [out, in] (metrics use it). */
  shape: [number, number];
  matrices: LayerMatrixData[];
}

export type SpectraSuccess = { id: number; ok: true; groups: Float64Array[]; metrics: SpectrumMetrics };
export type SpectraReply = SpectraSuccess | PoolFailure;

/** The layers computeSpectra looks at by default. */
export function spectrumLayers(model: Model): Layer[] {
  return model.layers.filter((l) => FACTORIZABLE_DTYPES.has(l.dtype) && !l.compressed);
}

export async function computeSpectra(model: Model, options: ComputeSpectraOptions = {}): Promise<LayerSpectrum[]> {
  const { signal, onResult } = options;
  throwIfCancelled(signal);
  const dense: LayerReader = { hash: (layer) => tensorOf(model, layer).hash(), matrices: (layer) => layerMatrices(model, layer, true) };
  const readerOf = (layer: Layer): LayerReader => (layer.compressed ? options.factorized! : dense);
  const layers = selectLayers(model, options.layers, options.factorized !== undefined);
  if ((options.order ?? 'size') === 'size') layers.sort((a, b) => b.params - a.params); // stable: ties keep model order
  const cache = options.cacheDir ? new SpectrumCache(options.cacheDir, options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES) : undefined;

  const results: (LayerSpectrum | undefined)[] = new Array(layers.length);
  let emitted = 0;
  const flush = () => {
    while (emitted < layers.length && results[emitted]) {
      const result = results[emitted++]!; // outside the optional call: `?.` would skip the increment
      onResult?.(result);
    }
  };
  // Each layer is hashed and looked up in the cache when its turn comes: the first result waits
  // for one layer, not for hashing the whole model, and cache hits never start a worker.
  const keys: string[] = new Array(layers.length);
  await runWorkerPool<SpectraJob, SpectraSuccess>({
    name: 'spectra worker',
    entry: workerEntry(__dirname, 'spectra-worker.js', 'spectraWorker.ts'),
    count: layers.length,
    threads: options.threads,
    signal,
    teamUp: worthATeam,
    prepare: (i) => {
      const layer = layers[i];
      keys[i] = SpectrumCache.key(readerOf(layer).hash(layer), matrixView(layer));
      const hit = cache?.get(keys[i]);
      if (hit) {
        results[i] = toSpectrum(layer, keys[i], hit.singularValues, hit.groups);
        flush();
        return undefined;
      }
      return { label: `Layer '${layer.name}'`, shape: [layer.shape[0], layer.shape[1]], matrices: readerOf(layer).matrices(layer) };
    },
    onDone: ({ id: i, groups, metrics }) => {
      const layer = layers[i];
      const combined = groups.length === 1 ? groups[0] : mergeDescending(groups);
      const spectrum = toSpectrum(layer, keys[i], combined, groups.length > 1 ? groups : undefined, metrics);
      cache?.put(keys[i], { singularValues: spectrum.singularValues, groups: spectrum.groups });
      results[i] = spectrum;
      flush();
    },
  });
  return results as LayerSpectrum[];
}

function selectLayers(model: Model, names: string[] | undefined, factorizedToo: boolean): Layer[] {
  if (!names) return spectrumLayers(model);
  return names.map((name) => {
    const layer = model.layers.find((l) => l.name === name);
    if (!layer) {
      throw new RankscopeError('NOT_FOUND', `No layer named '${name}' in ${model.summary.path}.`, 'Run `rankscope inspect MODEL` to list the layers.');
    }
    if (!FACTORIZABLE_DTYPES.has(layer.dtype)) {
      throw new RankscopeError('UNSUPPORTED', `Layer '${name}' has ${layer.dtype} weights; spectra need float weights.`);
    }
    if (layer.compressed && !factorizedToo) {
      throw new RankscopeError('UNSUPPORTED', `Layer '${name}' is already factorized (rank ${layer.compressed.rank}).`, 'Open the original model to see its full spectrum.');
    }
    return layer;
  });
}

/** The SpectrumCache key of a dense layer's spectrum (others that compute spectra share the cache through it). */
export function spectrumCacheKey(model: Model, layer: Layer): string {
  return SpectrumCache.key(tensorOf(model, layer).hash(), matrixView(layer));
}

/** How the tensor is seen as a matrix: part of the cache key (same bytes, other view, other σ). */
function matrixView(l: Layer): string {
  return `${l.layout}:${l.shape.join('x')}:g${l.groups ?? 1}`;
}

function tensorOf(model: Model, layer: Layer) {
  const t = model.tensor(layer.weight);
  if (!t) throw new RankscopeError('NOT_FOUND', `Layer '${layer.name}': weight tensor '${layer.weight}' is not in the model.`);
  return t;
}

function toSpectrum(layer: Layer, hash: string, singularValues: Float64Array, groups?: Float64Array[], metrics?: SpectrumMetrics): LayerSpectrum {
  return { layer: layer.name, hash, shape: [layer.shape[0], layer.shape[1]], singularValues, groups, metrics: metrics ?? spectrumMetrics(singularValues, layer.shape) };
}
