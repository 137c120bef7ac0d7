// Scores of a model's outputs: accuracy against labels (top-1/top-5) and fidelity to the
// original model's outputs on the same samples (top-1 agreement, relative output error, mean
// KL(original ‖ compressed) of the softmaxes). Accumulated batch by batch; sums in float64.
// Outputs of any shape: with a class layout (labels.ts) every position of a sample's output
// (one for (N, C), T for (N, T, C)) is one prediction; without one (no clear class axis) only
// the relative error is defined.
import { RankscopeError } from '../errors';

export interface EvalMetrics {
  samples: number;
  /** Classes on the class axis; absent when the output has no class axis (relative error only). */
  classes?: number;
  /** The class axis of the output (batch = 0), when there is one. */
  classAxis?: number;
  /** Predictions per sample (positions of the non-class axes), when more than one. */
  positions?: number;
  /** The scored output's dims per sample (without the batch axis). */
  outputShape?: number[];
  /** With labels: share of positions whose label is the top class / among the top 5. */
  top1?: number;
  top5?: number;
  /** With a reference (the original model's outputs): share of positions with the same top class. */
  agreement?: number;
  /** ‖y − y₀‖_F / ‖y₀‖_F over all samples. */
  relativeError?: number;
  /** Mean over positions of KL(softmax(y₀) ‖ softmax(y)), in nats. */
  meanKL?: number;
}

/** Where the classes sit in one sample's output: before·classes·after values, class c of position (b, a) at (b·classes + c)·after + a. */
export interface ScoreLayout {
  classes: number;
  before: number;
  after: number;
}

export class MetricAccumulator {
  private samples = 0;
  private labelled = 0;
  private top1 = 0;
  private top5 = 0;
  private compared = 0;
  private agree = 0;
  private diffSquares = 0;
  private refSquares = 0;
  private klSum = 0;
  private readonly before: number;
  private readonly after: number;

  /** `classes` undefined: an output without a class axis (relative error only). `layout` defaults to (N, classes). */
  constructor(readonly classes: number | undefined, layout: Partial<Pick<ScoreLayout, 'before' | 'after'>> = {}) {
    this.before = layout.before ?? 1;
    this.after = layout.after ?? 1;
  }

  /**
   * `outputs`: count samples, row-major; `labels`: the class of each position (count × before ×
   * after), checked against the class count; `reference`: the original's outputs, same layout.
   */
  add(outputs: ArrayLike<number>, count: number, labels?: Int32Array, reference?: ArrayLike<number>): void {
    const C = this.classes;
    if (reference && reference.length !== outputs.length) throw new Error(`reference holds ${reference.length} values for ${outputs.length} outputs`);
    if (C === undefined) {
      if (labels) throw new Error('labels need a class axis');
      if (reference) this.addDifference(outputs, reference);
      this.compared += reference ? count : 0;
      this.samples += count;
      return;
    }
    const { before, after } = this;
    const perSample = before * C * after;
    const positions = before * after;
    if (outputs.length !== count * perSample) throw new Error(`${outputs.length} outputs are not ${count} samples of ${before}×${C}×${after}`);
    if (labels && labels.length !== count * positions) throw new Error(`${labels.length} labels for ${count} samples of ${positions} positions`);
    const k = Math.min(5, C);
    for (let i = 0; i < count; i++) {
      for (let b = 0; b < before; b++) {
        for (let a = 0; a < after; a++) {
          const o = i * perSample + b * C * after + a;
          const top = argmax(outputs, o, C, after);
          if (labels) {
            const y = labels[i * positions + b * after + a];
            if (!(y >= 0 && y < C)) throw new RankscopeError('SHAPE_MISMATCH', `sample ${this.samples + i} has label ${y}, outside the output's ${C} classes (0…${C - 1}).`);
            const v = outputs[o + y * after];
            // Rank of the label = how many classes score strictly higher (ties count in its favour).
            let higher = 0;
            for (let c = 0; c < C && higher < k; c++) if (outputs[o + c * after] > v) higher++;
            if (higher === 0) this.top1++;
            if (higher < k) this.top5++;
            this.labelled++;
          }
          if (reference) {
            if (argmax(reference, o, C, after) === top) this.agree++;
            this.klSum += klSoftmax(reference, outputs, o, C, after);
            this.compared++;
          }
        }
      }
    }
    if (reference) this.addDifference(outputs, reference);
    this.samples += count;
  }

  private addDifference(outputs: ArrayLike<number>, reference: ArrayLike<number>): void {
    for (let j = 0; j < outputs.length; j++) {
      const d = outputs[j] - reference[j];
      this.diffSquares += d * d;
      this.refSquares += reference[j] * reference[j];
    }
  }

  result(): EvalMetrics {
    const m: EvalMetrics = { samples: this.samples };
    if (this.classes !== undefined) m.classes = this.classes;
    if (this.before * this.after > 1) m.positions = this.before * this.after;
    if (this.labelled > 0) {
      m.top1 = this.top1 / this.labelled;
      m.top5 = this.top5 / this.labelled;
    }
    if (this.compared > 0) {
      if (this.classes !== undefined) {
        m.agreement = this.agree / this.compared;
        m.meanKL = this.klSum / this.compared;
      }
      m.relativeError = this.refSquares > 0 ? Math.sqrt(this.diffSquares / this.refSquares) : Math.sqrt(this.diffSquares);
    }
    return m;
  }
}

/** Index of the largest of the n values at offset, offset + stride, … */
function argmax(x: ArrayLike<number>, offset: number, n: number, stride: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (x[offset + c * stride] > x[offset + best * stride]) best = c;
  return best;
}

/** KL(softmax(p) ‖ softmax(q)) for one row of logits (n values, `stride` apart), via stable log-softmax. */
function klSoftmax(p: ArrayLike<number>, q: ArrayLike<number>, offset: number, n: number, stride: number): number {
  const lp = logSumExp(p, offset, n, stride);
  const lq = logSumExp(q, offset, n, stride);
  let kl = 0;
  for (let c = 0; c < n; c++) {
    const logP = p[offset + c * stride] - lp;
    const logQ = q[offset + c * stride] - lq;
    kl += Math.exp(logP) * (logP - logQ);
  }
  return Math.max(0, kl);
}

function logSumExp(x: ArrayLike<number>, offset: number, n: number, stride: number): number {
  let max = -Infinity;
  for (let c = 0; c < n; c++) max = Math.max(max, x[offset + c * stride]);
  let sum = 0;
  for (let c = 0; c < n; c++) sum += Math.exp(x[offset + c * stride] - max);
  return max + Math.log(sum);
}

/** The figure a sweep ranks points by: higher is better. */
export type ScoreMetric = 'top1' | 'top5' | 'agreement' | 'kl';

export function score(m: EvalMetrics, metric: ScoreMetric): number | undefined {
  switch (metric) {
    case 'top1': return m.top1;
    case 'top5': return m.top5;
    case 'agreement': return m.agreement;
    case 'kl': return m.meanKL === undefined ? undefined : 0 - m.meanKL; // 0 − x: no −0 for a perfect match
  }
}
