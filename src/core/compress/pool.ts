// Factorization off the caller's thread: a pool of worker threads (one per core), one job per
// layer in flight per worker, jobs built lazily (a layer's matrices exist only while it is worked
// on), cancellable: aborting terminates the workers.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cancelled, RankscopeError, throwIfCancelled, type ErrorCode } from '../errors';
import type { Factors } from './factor';
import type { FactorShape, RankPolicy } from './policy';

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
  matrices: { rows: number; cols: number; data: Float32Array | Float64Array }[];
}

/** Factors of one group plus ‖W‖²_F (energy shares are weighted by it across groups). */
export type GroupFactors = Factors & { total: number };

export type FactorReply =
  | { id: number; ok: true; groups: GroupFactors[]; spectra?: Float64Array[] }
  | { id: number; ok: false; code?: ErrorCode; message: string; hint?: string };

function workerEntry(): { file: string; eval?: boolean } {
  const bundled = join(__dirname, 'factor-worker.js');
  if (existsSync(bundled)) return { file: bundled };
  const source = join(__dirname, 'factorWorker.ts');
  // Under tsx (tests, benches): its CJS hook registered inside the worker.
  if (existsSync(source)) return { file: `require('tsx/cjs'); require(${JSON.stringify(source)});`, eval: true };
  throw new Error(`factor worker not found next to ${__dirname} (run \`npm run build\`)`);
}

/** Runs `count` jobs made by `makeJob(i)`; resolves with the factors of each, in job order. */
export function factorInWorkers(
  count: number,
  makeJob: (index: number) => Omit<FactorJob, 'id'>,
  options: { threads?: number; signal?: AbortSignal; onSpectra?: (index: number, spectra: Float64Array[]) => void } = {},
): Promise<GroupFactors[][]> {
  throwIfCancelled(options.signal);
  const results: GroupFactors[][] = new Array(count);
  if (count === 0) return Promise.resolve(results);
  const size = Math.max(1, Math.min(options.threads ?? availableParallelism(), count));
  const entry = workerEntry();
  const workers: Worker[] = [];
  let next = 0;
  let finished = 0;
  let settled = false;
  return new Promise((resolve, reject) => {
    const stop = (error?: unknown) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', onAbort);
      for (const w of workers) void w.terminate();
      if (error) reject(error);
      else resolve(results);
    };
    const onAbort = () => stop(cancelled());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const feed = (worker: Worker) => {
      if (settled || next >= count) return;
      const index = next++;
      try {
        const job: FactorJob = { id: index, ...makeJob(index) };
        for (const m of job.matrices) if (m.data.byteLength !== m.data.buffer.byteLength) m.data = m.data.slice();
        worker.postMessage(job, job.matrices.map((m) => m.data.buffer as ArrayBuffer));
      } catch (e) {
        stop(e);
      }
    };
    for (let w = 0; w < size; w++) {
      const worker = new Worker(entry.file, { eval: entry.eval });
      workers.push(worker);
      worker.on('message', (reply: FactorReply) => {
        if (settled) return;
        if (!reply.ok) {
          stop(reply.code ? new RankscopeError(reply.code, reply.message, reply.hint) : new Error(`factor worker: ${reply.message}`));
          return;
        }
        results[reply.id] = reply.groups;
        if (reply.spectra) options.onSpectra?.(reply.id, reply.spectra);
        if (++finished === count) stop();
        else feed(worker);
      });
      worker.on('error', (e) => stop(new Error(`factor worker crashed: ${e.message}`)));
      worker.on('exit', (code) => {
        if (!settled && code !== 0) stop(new Error(`factor worker exited with code ${code}`));
      });
      feed(worker);
    }
  });
}
