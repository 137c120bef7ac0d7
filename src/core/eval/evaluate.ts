// One pass of a model over a dataset: batches flow to the ONNX Runtime thread while the next
// batch is read, outputs are scored as they come back. Any output shape: the class axis is
// resolved once (labels.ts) and the labels are checked against it before scoring; a model with a
// fixed batch size is fed batches of exactly that size (the last one padded).
import { RankscopeError, throwIfCancelled } from '../errors';
import type { Batch, Dataset } from './dataset';
import { classLayout, type ClassLayout } from './labels';
import { MetricAccumulator, type EvalMetrics } from './metrics';
import type { OrtSession, TensorInfo, WireTensor } from './runner';

export interface EvaluateOptions {
  /** Samples per run; a model whose inputs have a fixed batch size always gets that size. Default 32. */
  batchSize?: number;
  /** Output to score; default the model's first output. */
  output?: string;
  /** Axis of the output that holds the classes (batch = 0; negative from the end). Default: the only candidate, else none (labels then refuse). */
  classAxis?: number;
  /** Score the dataset's labels (default true when it has them); false: fidelity only. */
  useLabels?: boolean;
  /** The original model's outputs on the same samples (samples × values per sample), for fidelity. */
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
  /** samples × values per sample, when keepOutputs was set. */
  outputs?: Float32Array;
  seconds: number;
  /** Samples per run actually used (the model's fixed batch size where it has one). */
  batchSize: number;
}

export async function evaluate(session: OrtSession, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvalResult> {
  const { signal, reference } = options;
  const outputName = options.output ?? session.outputs[0]?.name;
  const outputInfo = session.outputs.find((o) => o.name === outputName);
  if (!outputName || !outputInfo) {
    throw new RankscopeError('BAD_ARGUMENT', `${session.label}: no output '${outputName}'.`, `Its outputs: ${session.outputs.map((o) => o.name).join(', ')}.`);
  }
  const fixed = fixedBatchSize(session);
  const batchSize = fixed ?? options.batchSize ?? 32;
  const useLabels = options.useLabels !== false && dataset.hasLabels;
  const t0 = performance.now();
  const samples = Math.min(options.samples ?? dataset.size, dataset.size);

  // The scoring layout, once per evaluation: from the output's static shape before anything runs,
  // else from the first batch's output.
  let scoring: { accumulator: MetricAccumulator; perSample: number; layout?: ClassLayout; labels?: Int32Array; dims: number[] } | undefined;
  const prepare = async (dims: number[]) => {
    const layout = classLayout(dims, {
      output: outputName, classAxis: options.classAxis,
      ...(useLabels ? { labelShape: dataset.labelShape, labelName: dataset.labelName } : {}),
    });
    const labels = useLabels && layout ? await dataset.classIndices(dims, layout, outputName, signal) : undefined;
    const perSample = dims.slice(1).reduce((a, b) => a * b, 1);
    if (reference && reference.length < samples * perSample) {
      throw new RankscopeError('SHAPE_MISMATCH', `${session.label}: output '${outputName}' holds ${perSample} values per sample, but the reference outputs have ${reference.length / Math.max(1, samples)}.`,
        'Compare models with the same outputs.');
    }
    scoring = { accumulator: new MetricAccumulator(layout?.classes, layout), perSample, layout, labels, dims: dims.slice(1) };
  };
  const staticDims = outputInfo.shape.slice(1);
  if (staticDims.every((d) => typeof d === 'number' && d >= 0)) await prepare([samples, ...(staticDims as number[])]);

  let kept: Float32Array | undefined;
  let done = 0;
  const score = async (batch: Batch, result: Record<string, WireTensor>) => {
    throwIfCancelled(signal);
    const out = result[outputName];
    const values = asFloat(out, outputName, session.label);
    const runBatch = fixed ?? batch.count;
    if (out.dims[0] !== runBatch) {
      throw new RankscopeError('SHAPE_MISMATCH', `${session.label}: output '${outputName}' has batch ${out.dims[0]} for ${runBatch} inputs.`, 'Score an output whose first axis is the batch (--output).');
    }
    if (!scoring) await prepare([samples, ...out.dims.slice(1)]);
    const s = scoring!;
    if (out.dims.length !== s.dims.length + 1 || out.dims.slice(1).some((d, i) => d !== s.dims[i])) {
      throw new RankscopeError('SHAPE_MISMATCH', `${session.label}: output '${outputName}' changed shape between batches (${out.dims.slice(1).join('×')} vs ${s.dims.join('×')} per sample).`,
        'Evaluate with --batch-size 1, or score an output whose shape does not depend on the input.');
    }
    const used = values.subarray(0, batch.count * s.perSample); // drops the padding of a short last batch
    const positions = s.layout ? s.layout.before * s.layout.after : 0;
    const labels = s.labels?.subarray(batch.start * positions, (batch.start + batch.count) * positions);
    const refSlice = reference?.subarray(batch.start * s.perSample, (batch.start + batch.count) * s.perSample);
    s.accumulator.add(used, batch.count, labels, refSlice);
    if (options.keepOutputs) {
      kept ??= new Float32Array(samples * s.perSample);
      kept.set(used, batch.start * s.perSample);
    }
    done += batch.count;
    options.onProgress?.(done, samples);
  };
  const batches = dataset.batches(batchSize, signal, samples);
  // Two batches in flight: while the worker runs batch i, batch i+1 is read, prepared and already
  // queued behind it, so the ONNX Runtime thread never waits for this one.
  let inflight: { batch: Batch; result: Promise<Record<string, WireTensor>> } | undefined;
  try {
    for await (const batch of batches) {
      const result = session.runTransferring(fixed ? padFeeds(batch.feeds, batch.count, fixed) : batch.feeds);
      result.catch(() => undefined); // surfaced when awaited
      if (inflight) await score(inflight.batch, await inflight.result);
      inflight = { batch, result };
    }
    if (inflight) await score(inflight.batch, await inflight.result);
  } finally {
    await batches.return(undefined);
  }
  await dataset.verify(signal); // the data just scored passes its checksums (a full pass already did)
  const metrics: EvalMetrics = { ...scoring!.accumulator.result(), outputShape: scoring!.dims };
  if (scoring!.layout) metrics.classAxis = scoring!.layout.axis;
  return { metrics, outputs: kept, seconds: (performance.now() - t0) / 1000, batchSize };
}

/**
 * The batch size the model's inputs fix (a number on axis 0 of every input that has a batch
 * axis), or undefined when it is symbolic. Inputs that fix different sizes are an error.
 */
export function fixedBatchSize(session: { label: string; inputs: TensorInfo[] }): number | undefined {
  const fixed = session.inputs.filter((i) => typeof i.shape[0] === 'number' && (i.shape[0] as number) > 0);
  const sizes = [...new Set(fixed.map((i) => i.shape[0] as number))];
  if (sizes.length > 1) {
    throw new RankscopeError('UNSUPPORTED', `${session.label}: inputs fix different batch sizes (${fixed.map((i) => `${i.name}: ${i.shape[0]}`).join(', ')}); cannot batch samples for it.`);
  }
  return sizes[0];
}

/** The feeds of `count` samples padded to `size` by repeating the last sample (its outputs are dropped). */
export function padFeeds(feeds: Record<string, WireTensor>, count: number, size: number): Record<string, WireTensor> {
  if (count === size) return feeds;
  if (count > size) throw new Error(`batch of ${count} for a model that takes ${size}`);
  const out: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    // Byte-wise: one code path for every element type.
    const rowBytes = t.data.byteLength / count;
    const bytes = new Uint8Array(rowBytes * size);
    bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    for (let i = count; i < size; i++) bytes.copyWithin(i * rowBytes, (count - 1) * rowBytes, count * rowBytes);
    const data = new (t.data.constructor as new (buffer: ArrayBuffer) => WireTensor['data'])(bytes.buffer);
    out[name] = { type: t.type, dims: [size, ...t.dims.slice(1)], data };
  }
  return out;
}

function asFloat(t: WireTensor, name: string, label: string): Float32Array | Float64Array {
  if (t.data instanceof Float32Array || t.data instanceof Float64Array) return t.data;
  throw new RankscopeError('UNSUPPORTED', `${label}: output '${name}' is ${t.type}; scores need float32 or float64 outputs.`);
}
