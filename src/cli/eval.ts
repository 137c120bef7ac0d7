// `rankscope eval MODEL --data D.npz`: accuracy (and, with --compare, fidelity to the original
// and both latencies side by side) with ONNX Runtime.
import { RankscopeError } from '../core/errors';
import { loadDataset, type Dataset } from '../core/eval/dataset';
import { evaluate, fixedBatchSize, padFeeds } from '../core/eval/evaluate';
import { shapeText } from '../core/eval/labels';
import { compareLatency, type Latency } from '../core/eval/latency';
import type { EvalMetrics } from '../core/eval/metrics';
import { OrtRunner } from '../core/eval/runner';
import { resolveTask } from '../core/eval/task';
import type { Command } from './command';
import { cliOverrides, intOption, parseOptions, TASK_OPTIONS, taskFileFor } from './options';

const usage = `rankscope eval [MODEL] --data DATA.npz [options]

Evaluates MODEL (ONNX) with ONNX Runtime on the arrays of DATA (.npz or .npy).
  --task FILE          rankscope.json with the defaults (default: ./rankscope.json if present)
  --data FILE          evaluation data (.npz / .npy)
  --input NAME=ARRAY   feed model input NAME from ARRAY (repeatable)
  --labels KEY         labels array (class indices or one-hot); --labels none: no labels
  --preset ntu         NTU RGB+D skeletons (N, 300, 150) → (N, 3, T, 25, 2)
  --output NAME        model output with the class scores (default: the first)
  --class-axis K       axis of that output holding the classes, e.g. 2 for (N, T, C) (default: the
                       only candidate; an output like (N, T, C) needs it when labels are scored)
  --compare ORIGINAL   also run ORIGINAL: fidelity (top-1 agreement, relative error, KL) and both latencies;
                       with --labels none a fidelity-only evaluation, for any output shape
  --batch-size N       (default 32; a model with a fixed batch size gets that)   --limit N   first N samples only
  --ep cpu|cuda        execution provider (default cpu)   --threads N   intra-op threads
  --runs N             timed runs for latency (default 20; 0 = skip)
  --json               print the result as JSON`;

export interface EvalReport {
  model: string;
  data: string;
  samples: number;
  metrics: EvalMetrics;
  seconds: number;
  latency?: Latency;
  original?: { model: string; metrics: EvalMetrics; latency?: Latency };
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Measure accuracy, fidelity and latency of a model on your data (ONNX Runtime).',
  usage,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, {
      ...TASK_OPTIONS, compare: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean' },
    });
    const taskFile = await taskFileFor(values.task);
    const overrides = cliOverrides(values);
    const task = resolveTask(taskFile, overrides);
    const model = positionals[0] ?? task.model;
    if (!model) throw new RankscopeError('BAD_ARGUMENT', 'which model? Give MODEL or "model" in rankscope.json.', usage.split('\n')[0]);
    if (positionals.length > 1) throw new RankscopeError('BAD_ARGUMENT', `one model at a time (got ${positionals.join(', ')}); use --compare ORIGINAL for a second.`);
    if (!task.dataset) throw new RankscopeError('BAD_ARGUMENT', 'no evaluation data: give --data DATA.npz (or "data" in rankscope.json).');
    const runs = values.runs === undefined ? (task.latency ? task.latency.runs : 0) : intOption(values.runs, '--runs', 0);
    const runner = OrtRunner.create({ ep: task.ep, intraOpThreads: task.threads, signal: io.signal });
    let dataset: Dataset | undefined;
    try {
      const session = await runner.open(model);
      dataset = await loadDataset(task.dataset, session.inputs);
      const original = values.compare ? await runner.open(values.compare) : undefined;
      if (!dataset.hasLabels && !original) {
        throw new RankscopeError('BAD_ARGUMENT', `${task.dataset.data} has no labels, so there is nothing to score.`, 'Name the labels array with --labels KEY, or compare with the original model: --compare ORIGINAL.onnx.');
      }
      const batchSize = batchSizeFor(original ? [session, original] : [session], overrides.batchSize ?? taskFile.batchSize, task.batchSize);
      const progress = (what: string) => (done: number, total: number) => { if (!values.json && process.stderr.isTTY) process.stderr.write(`\r${what}: ${done}/${total}`); };
      const options = { batchSize, output: task.output, classAxis: task.classAxis, signal: io.signal };
      const base = original ? await evaluate(original, dataset, { ...options, keepOutputs: true, onProgress: progress('original') }) : undefined;
      const result = await evaluate(session, dataset, { ...options, reference: base?.outputs, onProgress: progress('model') });
      if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
      let latency: Latency[] = [];
      if (runs > 0) {
        const count = Math.min(batchSize, dataset.size);
        const batch = await dataset.batch(0, count, io.signal);
        latency = await compareLatency(original ? [session, original] : [session], padFeeds(batch.feeds, count, batchSize), { warmup: task.latency ? task.latency.warmup : 3, runs });
      }
      const report: EvalReport = {
        model, data: task.dataset.data, samples: dataset.size, metrics: result.metrics, seconds: result.seconds, latency: latency[0],
        ...(original && base ? { original: { model: values.compare!, metrics: base.metrics, latency: latency[1] } } : {}),
      };
      if (values.json) io.out(JSON.stringify(report, null, 2));
      else printReport(report, io.out);
      return 0;
    } finally {
      await dataset?.close();
      await runner.dispose();
    }
  },
};

/**
 * Samples per run: the models' fixed batch size where their inputs have one (a size the user asked
 * for that differs is refused, not ignored), else the requested or default size.
 */
function batchSizeFor(sessions: Parameters<typeof fixedBatchSize>[0][], requested: number | undefined, fallback: number): number {
  const fixed = [...new Set(sessions.map(fixedBatchSize).filter((b) => b !== undefined))];
  if (fixed.length > 1) {
    throw new RankscopeError('UNSUPPORTED', `the models take different fixed batch sizes (${sessions.map((s) => `${s.label}: ${fixedBatchSize(s) ?? 'any'}`).join(', ')}); they cannot be compared batch by batch.`);
  }
  if (fixed.length === 0) return fallback;
  if (requested !== undefined && requested !== fixed[0]) {
    throw new RankscopeError('BAD_ARGUMENT', `batch size ${requested} was asked for, but the model's inputs take a fixed batch of ${fixed[0]}.`,
      `Leave out --batch-size (and "batchSize" in rankscope.json) to use ${fixed[0]}.`);
  }
  return fixed[0];
}

const pct = (x: number | undefined) => (x === undefined ? '—' : `${(x * 100).toFixed(2)} %`);

function printReport(r: EvalReport, out: (s: string) => void): void {
  out(`${r.model} on ${r.data}: ${r.samples} samples in ${r.seconds.toFixed(2)} s`);
  if (r.metrics.positions !== undefined) {
    out(`output ${shapeText(['N', ...(r.metrics.outputShape ?? [])])}, classes on axis ${r.metrics.classAxis}: ${r.metrics.positions} predictions per sample, each scored`);
  }
  const rows: [string, string, string?][] = [];
  const m = r.metrics;
  const o = r.original?.metrics;
  if (m.top1 !== undefined) rows.push(['top-1 accuracy', pct(m.top1), o && pct(o.top1)]);
  if (m.top5 !== undefined) rows.push(['top-5 accuracy', pct(m.top5), o && pct(o.top5)]);
  if (m.agreement !== undefined) rows.push(['top-1 agreement with original', pct(m.agreement)]);
  else if (m.relativeError !== undefined) rows.push(['top-1 agreement with original', `— (output ${shapeText(['N', ...(m.outputShape ?? [])])} has no clear class axis; --class-axis K names it)`]);
  if (m.relativeError !== undefined) rows.push(['relative output error', m.relativeError.toExponential(3)]);
  if (m.meanKL !== undefined) rows.push(['mean KL(original ‖ model)', m.meanKL.toExponential(3)]);
  const lat = (l?: Latency) => (l ? `${l.medianMs.toFixed(2)} ms median, ${l.p90Ms.toFixed(2)} ms p90, ${l.throughput.toFixed(0)} samples/s (batch ${l.batchSize})` : undefined);
  if (r.latency) rows.push([r.original ? 'latency per batch, model' : 'latency per batch', lat(r.latency)!]);
  if (r.original?.latency) rows.push(['latency per batch, original', lat(r.original.latency)!]);
  const w = Math.max(...rows.map((x) => x[0].length));
  if (o) out(`${''.padEnd(w)}  model${' '.repeat(10)}original`);
  for (const [k, v, orig] of rows) out(`${k.padEnd(w)}  ${orig !== undefined ? v.padEnd(15) : v}${orig ?? ''}`);
}
