// Factors shared by all points of a sweep. Balanced factors A = U√Σ, B = √ΣVᵀ of rank K contain
// those of every rank k ≤ K (the first k columns of A, rows of B), so each layer is factorized
// ONCE at the largest rank any point needs (in COMPRESS's worker pool, off this thread) and
// every point takes a truncation. Without this a sweep re-ran the SVDs at every level.
import { factorizePlan, type WhiteningSource } from '../compress/apply';
import { truncateFactors } from '../compress/factor';
import { isWhitened, truncateWhitened } from '../compress/whitened';
import type { Plan, PlanLayer } from '../compress/plan';
import type { GroupFactors } from '../compress/pool';
import type { OnnxModel } from '../formats/onnx';

export class FactorBank {
  private readonly have = new Map<string, GroupFactors[]>();
  /** Seconds spent factorizing. */
  seconds = 0;
  /** How many times each layer was factorized (once, unless a later ensure() asks a larger rank). */
  readonly factorizations = new Map<string, number>();

  /** With `whitening`, the bank holds whitened factors (compress/whitened.ts), which truncate the same way. */
  constructor(private readonly model: OnnxModel, private readonly signal?: AbortSignal, private readonly threads?: number, private readonly whitening?: WhiteningSource) {}

  /** Makes sure every active row of `plans` can be served; factorizes what is missing at the largest rank asked. */
  async ensure(plans: Plan[]): Promise<void> {
    const need = new Map<string, PlanLayer>();
    for (const plan of plans) {
      for (const row of plan.layers) {
        if (row.skipped) continue;
        const haveK = this.have.get(row.layer)?.[0]?.k ?? 0;
        if (row.k > haveK && row.k > (need.get(row.layer)?.k ?? 0)) need.set(row.layer, row);
      }
    }
    if (need.size === 0) return;
    const t0 = performance.now();
    const template = plans[0];
    const computed = await factorizePlan(this.model, { ...template, layers: [...need.values()] }, { signal: this.signal, threads: this.threads, whitening: this.whitening });
    for (const [layer, groups] of computed) {
      this.have.set(layer, groups);
      this.factorizations.set(layer, (this.factorizations.get(layer) ?? 0) + 1);
    }
    this.seconds += (performance.now() - t0) / 1000;
  }

  /** The factors of `plan`'s rows at their ranks (call ensure first). */
  factorsFor(plan: Plan): Map<string, GroupFactors[]> {
    const out = new Map<string, GroupFactors[]>();
    for (const row of plan.layers) {
      if (row.skipped) continue;
      const groups = this.have.get(row.layer);
      if (!groups || groups[0].k < row.k) throw new Error(`FactorBank: layer '${row.layer}' needed at rank ${row.k} before ensure()`);
      out.set(row.layer, groups.map((g) => (isWhitened(g) ? truncateWhitened(g, row.k) : truncateFactors(g, row.k))));
    }
    return out;
  }
}
