// computeSpectra: the singular values and metrics of a model's layers, computed in a pool of
// worker threads sized to the cores (never on the caller's thread), streamed back layer by layer
// in the requested order, cancellable, and cached on disk by tensor hash.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cancelled, RankscopeError, throwIfCancelled, type ErrorCode } from '../errors';
import { layerMatrices } from '../model/matrix';
import { FACTORIZABLE_DTYPES, type Layer, type Model } from '../model/types';
import { SpectrumCache, DEFAULT_CACHE_MAX_BYTES } from './cache';
import { spectrumMetrics, type SpectrumMetrics } from './metrics';
import { mergeDescending } from './singularValues';

export interface LayerSpectrum {
  layer: string;
  /** Cache key: hash of the tensor bytes and the matrix view. */
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
}

/** Message to a spectra worker. */
export interface SpectraJob {
  id: number;
  label: string;
  /** The layer's [out, in] (metrics use it). */
  shape: [number, number];
  matrices: { rows: number; cols: number; data: Float32Array }[];
}

export type SpectraReply =
  | { id: number; ok: true; groups: Float64Array[]; metrics: SpectrumMetrics }
  | { id: number; ok: false; code?: ErrorCode; message: string; hint?: string };

/** The layers computeSpectra looks at by default. */
export function spectrumLayers(model: Model): Layer[] {
  return model.layers.filter((l) => FACTORIZABLE_DTYPES.has(l.dtype) && !l.compressed);
}

export async function computeSpectra(model: Model, options: ComputeSpectraOptions = {}): Promise<LayerSpectrum[]> {
  const { signal, onResult } = options;
  throwIfCancelled(signal);
  const layers = selectLayers(model, options.layers);
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
  await runPool(layers.length, options.threads, signal, (i) => {
    const layer = layers[i];
    keys[i] = spectrumCacheKey(model, layer);
    const hit = cache?.get(keys[i]);
    if (hit) {
      results[i] = toSpectrum(layer, keys[i], hit.singularValues, hit.groups);
      flush();
      return undefined;
    }
    return { label: `Layer '${layer.name}'`, shape: [layer.shape[0], layer.shape[1]], matrices: layerMatrices(model, layer) };
  }, (i, groups, metrics) => {
    const layer = layers[i];
    const combined = groups.length === 1 ? groups[0] : mergeDescending(groups);
    const spectrum = toSpectrum(layer, keys[i], combined, groups.length > 1 ? groups : undefined, metrics);
    cache?.put(keys[i], { singularValues: spectrum.singularValues, groups: spectrum.groups });
    results[i] = spectrum;
    flush();
  });
  return results as LayerSpectrum[];
}

function selectLayers(model: Model, names?: string[]): Layer[] {
  if (!names) return spectrumLayers(model);
  return names.map((name) => {
    const layer = model.layers.find((l) => l.name === name);
    if (!layer) {
      throw new RankscopeError('NOT_FOUND', `No layer named '${name}' in ${model.summary.path}.`, 'Run `rankscope inspect MODEL` to list the layers.');
    }
    if (!FACTORIZABLE_DTYPES.has(layer.dtype)) {
      throw new RankscopeError('UNSUPPORTED', `Layer '${name}' has ${layer.dtype} weights; spectra need float weights.`);
    }
    if (layer.compressed) {
      throw new RankscopeError('UNSUPPORTED', `Layer '${name}' is already factorized (rank ${layer.compressed.rank}).`, 'Open the original model to see its full spectrum.');
    }
    return layer;
  });
}

/** The SpectrumCache key of a layer's spectrum (others that compute spectra share the cache through it). */
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

/**
 * Runs tasks 0…count−1 in order on up to `threads` worker threads, one in flight per worker.
 * `prepare` builds a task's job lazily, when a worker is free (the matrices of 85 M parameters
 * need not all exist at once), or returns undefined when it needs no worker (a cache hit).
 * Workers start only when needed. Rejects on cancel, on a job's error (terminating the pool)
 * or on a worker crash.
 */
function runPool(
  count: number,
  threads: number | undefined,
  signal: AbortSignal | undefined,
  prepare: (index: number) => Omit<SpectraJob, 'id'> | undefined,
  onDone: (index: number, groups: Float64Array[], metrics: SpectrumMetrics) => void,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(cancelled());
  const size = Math.max(1, Math.min(threads ?? availableParallelism(), count));
  const workers: Worker[] = [];
  const idle: Worker[] = [];
  const retired = new Set<Worker>();
  let next = 0;
  let finished = 0;
  let settled = false;
  return new Promise<void>((resolve, reject) => {
    const stop = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      for (const w of workers) void w.terminate();
      if (error) reject(error);
      else resolve();
    };
    const onAbort = () => stop(cancelled());
    signal?.addEventListener('abort', onAbort, { once: true });

    const spawn = (): Worker => {
      const entry = workerEntry();
      const worker = new Worker(entry.file, { execArgv: entry.execArgv });
      workers.push(worker);
      worker.on('message', (reply: SpectraReply) => {
        if (settled) return;
        if (!reply.ok) {
          stop(reply.code ? new RankscopeError(reply.code, reply.message, reply.hint) : new Error(`spectra worker: ${reply.message}`));
          return;
        }
        finished++;
        idle.push(worker);
        try {
          onDone(reply.id, reply.groups, reply.metrics);
        } catch (e) {
          stop(e);
          return;
        }
        pump();
      });
      worker.on('error', (e) => stop(new Error(`spectra worker crashed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!settled && !retired.has(worker) && code !== 0) stop(new Error(`spectra worker exited with code ${code}`));
      });
      return worker;
    };

    const pump = () => {
      try {
        while (!settled && next < count && (idle.length > 0 || workers.length < size)) {
          const index = next++;
          const job = prepare(index);
          if (settled) return; // prepare's callbacks may have cancelled
          if (!job) {
            finished++;
            continue;
          }
          // Transfer only buffers the job owns whole (a view into a model's buffer would be detached).
          for (const m of job.matrices) if (m.data.byteLength !== m.data.buffer.byteLength) m.data = m.data.slice();
          const worker = idle.pop() ?? spawn();
          worker.postMessage({ id: index, ...job } satisfies SpectraJob, job.matrices.map((m) => m.data.buffer as ArrayBuffer));
        }
      } catch (e) {
        stop(e);
        return;
      }
      if (next >= count) {
        for (const w of idle.splice(0)) {
          retired.add(w);
          void w.terminate();
        }
      }
      if (finished === count) stop();
    };
    pump();
  });
}

/** The bundled worker next to this bundle (dist/), or the TypeScript source run through tsx in development. */
function workerEntry(): { file: string; execArgv?: string[] } {
  const bundled = join(__dirname, 'spectra-worker.js');
  if (existsSync(bundled)) return { file: bundled };
  const source = join(__dirname, 'spectraWorker.ts');
  // tsx's ESM hook (--import) does not reach worker threads on Node 20; its CJS hook does.
  if (existsSync(source)) return { file: source, execArgv: ['--require', 'tsx/cjs'] };
  throw new Error(`spectra worker not found next to ${__dirname} (run \`npm run build\`)`);
}
