// Factorization off the caller's thread, in the shared worker-thread pool (linalg/workerPool.ts):
// one job per layer, built lazily (a layer's matrices exist only while it is worked on), cancellable.
import { throwIfCancelled } from '../errors';
import { worthATeam } from '../linalg/team';
import { runWorkerPool, workerEntry, type PoolFailure } from '../linalg/workerPool';
import type { LayerMatrixData } from '../model/matrix';
import type { Factors } from './factor';
import type { FactorShape, RankPolicy } from './policy';
import type { LayerGram, WhiteningOptions } from './whitened';

export interface FactorJob {
  id: number;
  label: string;
  /** The rank; ignored when `policy` is set. */
  k: number;
  /**
   * Choose k in the worker by this policy from the layer's singular values, computed from the same
   * Gram and tridiagonal reduction as the vectors (one reduction per layer). The reply then
   * carries the spectra, and no factors when the policy skips the layer.
   */
  policy?: { policy: RankPolicy; shape: FactorShape };
  /** W per group; with `transposed`, data holds Wᵀ and the worker transposes the factors (model/matrix.ts). */
  matrices: LayerMatrixData[];
  /** Whitened factorization (compress/whitened.ts) with this layer's calibration Gram; `policy` must be unset. */
  whiten?: { gram: LayerGram } & WhiteningOptions;
}

/** Factors of one group plus ‖W‖²_F (energy shares are weighted by it across groups). */
export type GroupFactors = Factors & { total: number };

/**
 * `partialSpectra`: the spectrum is exact only up to the chosen k (the rest of ‖W‖²_F spread
 * evenly over the tail): enough to plan from, not a layer's spectrum to cache or show.
 */
export type FactorSuccess = { id: number; ok: true; groups: GroupFactors[]; spectra?: Float64Array[]; partialSpectra?: boolean };
export type FactorReply = FactorSuccess | PoolFailure;

/** Runs `count` jobs made by `makeJob(i)`; resolves with the factors of each, in job order. */
export async function factorInWorkers(
  count: number,
  makeJob: (index: number) => Omit<FactorJob, 'id'>,
  options: { threads?: number; signal?: AbortSignal; onSpectra?: (index: number, spectra: Float64Array[], partial: boolean) => void } = {},
): Promise<GroupFactors[][]> {
  throwIfCancelled(options.signal);
  const results: GroupFactors[][] = new Array(count);
  await runWorkerPool<FactorJob, FactorSuccess>({
    name: 'factor worker',
    entry: workerEntry(__dirname, 'factor-worker.js', 'factorWorker.ts'),
    count,
    threads: options.threads,
    signal: options.signal,
    prepare: makeJob,
    teamUp: worthATeam,
    onDone: (reply) => {
      results[reply.id] = reply.groups;
      if (reply.spectra) options.onSpectra?.(reply.id, reply.spectra, reply.partialSpectra === true);
    },
  });
  return results;
}
