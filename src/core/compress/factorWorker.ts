// Worker-thread entry (bundled as dist/factor-worker.js): top-k balanced factors of the matrices
// it is sent, one job at a time; buffers are transferred both ways.
import { singularValues, topSingularTriplets } from '../linalg';
import { balancedFactors, factorize, frobeniusSquared } from './factor';
import { chooseRank } from './policy';
import type { FactorJob, FactorSuccess, GroupFactors } from './pool';
import { whitenedGroups, whitenedSpectra } from './whitened';
import { servePoolJobs } from '../linalg/workerPool';

servePoolJobs<FactorJob, FactorSuccess>(
  (job) => job.whiten ? whitenedReply(job, job.whiten)
    : job.policy ? byPolicy(job, job.policy) : { id: job.id, ok: true, groups: job.matrices.map((_, g) => factorGroup(job, g, job.k)) },
  (reply) => [...reply.groups.flatMap((g) => [g.a.buffer, g.b.buffer]), ...(reply.spectra ?? []).map((s) => s.buffer)] as ArrayBuffer[],
);

function groupLabel(job: FactorJob, g: number): string {
  return job.matrices.length > 1 ? `${job.label} (group ${g})` : job.label;
}

function factorGroup(job: FactorJob, g: number, k: number): GroupFactors {
  const m = job.matrices[g];
  return { ...factorize(m.data, m.rows, m.cols, k, groupLabel(job, g)), total: frobeniusSquared(m.data) };
}

/** Spectra, the policy's k, and the factors at k. One matrix: one reduction serves both; groups need all spectra first. */
function byPolicy(job: FactorJob, { policy, shape }: NonNullable<FactorJob['policy']>): FactorSuccess {
  if (job.matrices.length === 1) {
    const m = job.matrices[0];
    let k = 0;
    const t = topSingularTriplets(m.data, m.rows, m.cols, (all) => {
      const choice = chooseRank(policy, shape, [all]);
      return (k = choice.skipped ? 0 : choice.k);
    }, job.label);
    const groups = k > 0 ? [{ ...balancedFactors(t, m.rows, m.cols, k, frobeniusSquared(m.data)), total: frobeniusSquared(m.data) }] : [];
    return { id: job.id, ok: true, groups, spectra: [t.all!] };
  }
  const spectra = job.matrices.map((m, g) => singularValues(m.data, m.rows, m.cols, groupLabel(job, g)));
  const choice = chooseRank(policy, shape, spectra);
  const groups = choice.skipped ? [] : job.matrices.map((_, g) => factorGroup(job, g, choice.k));
  return { id: job.id, ok: true, groups, spectra };
}

/** Whitened factors at job.k, or (k = 0) only the whitened singular values of every group. */
function whitenedReply(job: FactorJob, { gram, jitter }: NonNullable<FactorJob['whiten']>): FactorSuccess {
  if (job.k === 0) return { id: job.id, ok: true, groups: [], spectra: whitenedSpectra(job.matrices, gram, jitter, job.label) };
  return { id: job.id, ok: true, groups: whitenedGroups(job.matrices, job.k, gram, jitter, job.label) };
}
