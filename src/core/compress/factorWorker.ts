// Worker-thread entry (bundled as dist/factor-worker.js): top-k balanced factors of the matrices
// it is sent, one job at a time; buffers are transferred both ways.
import { singularValues } from '../linalg';
import { progressiveTriplets, type LeadingRankChooser } from '../linalg/leading';
import { servePoolJobs } from '../linalg/workerPool';
import { storedShape } from '../model/matrix';
import { balancedFactors, factorize, transposeFactors, type Factors } from './factor';
import { chooseRank, decide, policyKind, type FactorShape, type RankPolicy } from './policy';
import type { FactorJob, FactorSuccess, GroupFactors } from './pool';
import { whitenedGroups, whitenedSpectra } from './whitened';

servePoolJobs<FactorJob, FactorSuccess>(
  (job) => job.whiten ? whitenedReply(job, job.whiten)
    : job.policy ? byPolicy(job, job.policy) : { id: job.id, ok: true, groups: job.matrices.map((_, g) => factorGroup(job, g, job.k)) },
  (reply) => [...reply.groups.flatMap((g) => [g.a.buffer, g.b.buffer]), ...(reply.spectra ?? []).map((s) => s.buffer)] as ArrayBuffer[],
);

function groupLabel(job: FactorJob, g: number): string {
  return job.matrices.length > 1 ? `${job.label} (group ${g})` : job.label;
}

export function factorGroup(job: FactorJob, g: number, k: number): GroupFactors {
  const m = job.matrices[g];
  const f = factorize(m.data, ...storedShape(m), k, groupLabel(job, g));
  return { ...ofW(m, f), total: f.total };
}

/** Factors of the matrix as the job holds it, as factors of W (the job may hold Wᵀ). */
function ofW(m: FactorJob['matrices'][number], f: Factors): Factors {
  return m.transposed ? transposeFactors(f) : f;
}

/**
 * Spectra, the policy's k, and the factors at k. One matrix: the policy picks k from the leading
 * values as they converge (progressiveTriplets), so a large layer may never need its full
 * spectrum; the reply's spectrum is then exact only up to k (flagged partial). Groups need all
 * spectra first.
 */
export function byPolicy(job: FactorJob, { policy, shape }: NonNullable<FactorJob['policy']>): FactorSuccess {
  if (job.matrices.length === 1) {
    const m = job.matrices[0];
    const r = Math.min(m.rows, m.cols);
    let chosen: Float64Array | undefined;
    const want = policyOnLeading(policy, shape, r, (spectrum) => (chosen = spectrum));
    const known = policyKind(policy) === 'energy' ? undefined : chooseRank(policy, shape, [new Float64Array(r)]);
    const [rows, cols] = storedShape(m);
    const t = progressiveTriplets(m.data, rows, cols, want, job.label, known && !known.skipped ? { firstBlock: 2 * known.k } : {});
    const k = t.s.length;
    const total = t.totalEnergy;
    const groups = k > 0 ? [{ ...ofW(m, balancedFactors(t, rows, cols, k, total)), total }] : [];
    return { id: job.id, ok: true, groups, spectra: [t.all ?? chosen!], partialSpectra: !t.all };
  }
  const spectra = job.matrices.map((m, g) => singularValues(m.data, ...storedShape(m), groupLabel(job, g)));
  const choice = chooseRank(policy, shape, spectra);
  const groups = choice.skipped ? [] : job.matrices.map((_, g) => factorGroup(job, g, choice.k));
  return { id: job.id, ok: true, groups, spectra };
}

/**
 * The policy as a LeadingRankChooser over r values: the known leading σ with the rest of ‖W‖²_F
 * spread evenly over the unknown tail (never above the last known σ, so still descending). The
 * energy curve is then exact up to the known values, so the choice is the true one when its k is
 * among them, or when every rank past them saves no parameters. `onChoice` gets the spectrum the
 * decision was made on (what the plan is made from).
 */
export function policyOnLeading(policy: RankPolicy, shape: FactorShape, r: number, onChoice: (spectrum: Float64Array) => void): LeadingRankChooser {
  return (leading, total, whatIf) => {
    const spectrum = withFlatTail(leading, total, r);
    const choice = chooseRank(policy, shape, [spectrum]);
    const decided = leading.length === r || choice.k <= leading.length
      || (!policy.force && decide(shape, leading.length + 1, 0, false).skipped);
    if (!decided) return undefined;
    if (!whatIf) onChoice(spectrum);
    return choice.skipped ? 0 : choice.k;
  };
}

export function withFlatTail(leading: Float64Array, total: number, r: number): Float64Array {
  if (leading.length >= r) return leading;
  const out = new Float64Array(r);
  out.set(leading);
  let known = 0;
  for (const s of leading) known += s * s;
  const last = leading.length ? leading[leading.length - 1] : Infinity;
  const tail = Math.min(last, Math.sqrt(Math.max(0, total - known) / (r - leading.length)));
  out.fill(tail, leading.length);
  return out;
}

/** Whitened factors at job.k, or (k = 0) only the whitened singular values of every group. */
function whitenedReply(job: FactorJob, { gram, ...options }: NonNullable<FactorJob['whiten']>): FactorSuccess {
  if (job.k === 0) return { id: job.id, ok: true, groups: [], spectra: whitenedSpectra(job.matrices, gram, options, job.label) };
  return { id: job.id, ok: true, groups: whitenedGroups(job.matrices, job.k, gram, options, job.label) };
}
