// Scores of a classifier's outputs: accuracy against labels (top-1/top-5) and fidelity to the
// original model's outputs on the same samples (top-1 agreement, relative output error, mean
// KL(original ‖ compressed) of the softmaxes). Accumulated batch by batch; sums in float64.

export interface EvalMetrics {
  samples: number;
  classes: number;
  /** With labels. */
  top1?: number;
  top5?: number;
  /** With a reference (the original model's outputs). */
  agreement?: number;
  /** ‖y − y₀‖_F / ‖y₀‖_F over all samples. */
  relativeError?: number;
  /** Mean over samples of KL(softmax(y₀) ‖ softmax(y)), in nats. */
  meanKL?: number;
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

  constructor(readonly classes: number) {}

  /** `outputs`: count×classes row-major; `labels`: class per sample; `reference`: the original's outputs, same layout. */
  add(outputs: ArrayLike<number>, count: number, labels?: Int32Array, reference?: ArrayLike<number>): void {
    const C = this.classes;
    const k = Math.min(5, C);
    for (let i = 0; i < count; i++) {
      const o = i * C;
      const top = argmax(outputs, o, C);
      if (labels) {
        const y = labels[i];
        const v = outputs[o + y];
        // Rank of the label = how many classes score strictly higher (ties count in its favour).
        let higher = 0;
        for (let c = 0; c < C && higher < k; c++) if (outputs[o + c] > v) higher++;
        if (higher === 0) this.top1++;
        if (higher < k) this.top5++;
        this.labelled++;
      }
      if (reference) {
        if (argmax(reference, o, C) === top) this.agree++;
        for (let c = 0; c < C; c++) {
          const d = outputs[o + c] - reference[o + c];
          this.diffSquares += d * d;
          this.refSquares += reference[o + c] * reference[o + c];
        }
        this.klSum += klSoftmax(reference, outputs, o, C);
        this.compared++;
      }
    }
    this.samples += count;
  }

  result(): EvalMetrics {
    const m: EvalMetrics = { samples: this.samples, classes: this.classes };
    if (this.labelled > 0) {
      m.top1 = this.top1 / this.labelled;
      m.top5 = this.top5 / this.labelled;
    }
    if (this.compared > 0) {
      m.agreement = this.agree / this.compared;
      m.relativeError = this.refSquares > 0 ? Math.sqrt(this.diffSquares / this.refSquares) : Math.sqrt(this.diffSquares);
      m.meanKL = this.klSum / this.compared;
    }
    return m;
  }
}

function argmax(x: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let c = 1; c < n; c++) if (x[offset + c] > x[offset + best]) best = c;
  return best;
}

/** KL(softmax(p) ‖ softmax(q)) for one row of logits, via stable log-softmax. */
function klSoftmax(p: ArrayLike<number>, q: ArrayLike<number>, offset: number, n: number): number {
  const lp = logSumExp(p, offset, n);
  const lq = logSumExp(q, offset, n);
  let kl = 0;
  for (let c = 0; c < n; c++) {
    const logP = p[offset + c] - lp;
    const logQ = q[offset + c] - lq;
    kl += Math.exp(logP) * (logP - logQ);
  }
  return Math.max(0, kl);
}

function logSumExp(x: ArrayLike<number>, offset: number, n: number): number {
  let max = -Infinity;
  for (let c = 0; c < n; c++) max = Math.max(max, x[offset + c]);
  let sum = 0;
  for (let c = 0; c < n; c++) sum += Math.exp(x[offset + c] - max);
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
