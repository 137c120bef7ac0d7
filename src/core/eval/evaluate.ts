// One pass of a model over a dataset: batches flow to the ONNX Runtime thread while the next
// batch is read, outputs are scored as they come back.
import { RankscopeError, throwIfCancelled } from '../errors';
import type { Batch, Dataset } from './dataset';
import { MetricAccumulator, type EvalMetrics } from './metrics';
import type { OrtSession, WireTensor } from './runner';

export interface EvaluateOptions {
  batchSize?: number;
  /** Output to score; default the model's first output. */
  output?: string;
  /** The original model's outputs on the same samples (samples×classes), for fidelity. */
  reference?: Float32Array;
  /** Score only the first N samples (sensitivity probes on a calibration subset). */
  samples?: number;
  /** Keep this model's outputs (to serve as a later reference). */
  keepOutputs?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface EvalResult {
  metrics: EvalMetrics;
  /** samples×classes, when keepOutputs was set. */
  outputs?: Float32Array;
  seconds: number;
}

export async function evaluate(session: OrtSession, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvalResult> {
  const { batchSize = 32, signal, reference } = options;
  const outputName = options.output ?? session.outputs[0]?.name;
  if (!outputName || !session.outputs.some((o) => o.name === outputName)) {
    throw new RankscopeError('BAD_ARGUMENT', `${session.label}: no output '${outputName}'.`, `Its outputs: ${session.outputs.map((o) => o.name).join(', ')}.`);
  }
  const t0 = performance.now();
  let accumulator: MetricAccumulator | undefined;
  let kept: Float32Array | undefined;
  const samples = Math.min(options.samples ?? dataset.size, dataset.size);
  const batches = dataset.batches(batchSize, signal, samples);
  let done = 0;
  const score = (batch: Batch, result: Record<string, WireTensor>) => {
    throwIfCancelled(signal);
    const out = result[outputName];
    const logits = asFloat(out, outputName, session.label);
    const classes = out.dims.length === 1 ? 1 : out.dims.slice(1).reduce((a, b) => a * b, 1);
    if (out.dims[0] !== batch.count) {
      throw new RankscopeError('SHAPE_MISMATCH', `${session.label}: output '${outputName}' has batch ${out.dims[0]} for ${batch.count} inputs.`, 'Score an output whose first axis is the batch (--output).');
    }
    accumulator ??= new MetricAccumulator(classes);
    if (reference && reference.length < samples * classes) {
      throw new RankscopeError('SHAPE_MISMATCH', `reference outputs hold ${reference.length} values; expected ${samples} × ${classes}.`);
    }
    const refSlice = reference?.subarray(batch.start * classes, (batch.start + batch.count) * classes);
    accumulator.add(logits, batch.count, batch.labels, refSlice);
    if (options.keepOutputs) {
      kept ??= new Float32Array(samples * classes);
      kept.set(logits, batch.start * classes);
    }
    done += batch.count;
    options.onProgress?.(done, samples);
  };
  // Two batches in flight: while the worker runs batch i, batch i+1 is read, prepared and already
  // queued behind it, so the ONNX Runtime thread never waits for this one.
  let inflight: { batch: Batch; result: Promise<Record<string, WireTensor>> } | undefined;
  try {
    for await (const batch of batches) {
      const result = session.runTransferring(batch.feeds);
      result.catch(() => undefined); // surfaced when awaited
      if (inflight) score(inflight.batch, await inflight.result);
      inflight = { batch, result };
    }
    if (inflight) score(inflight.batch, await inflight.result);
  } finally {
    await batches.return(undefined);
  }
  return { metrics: accumulator!.result(), outputs: kept, seconds: (performance.now() - t0) / 1000 };
}

function asFloat(t: WireTensor, name: string, label: string): Float32Array | Float64Array {
  if (t.data instanceof Float32Array || t.data instanceof Float64Array) return t.data;
  throw new RankscopeError('UNSUPPORTED', `${label}: output '${name}' is ${t.type}; scores need float32 or float64 logits.`);
}
