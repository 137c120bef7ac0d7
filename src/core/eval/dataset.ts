// Evaluation data: arrays of an .npz/.npy file mapped onto the model's inputs, checked against
// the model's input shapes and dtypes before anything runs, then served batch by batch.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { RankscopeError, throwIfCancelled } from '../errors';
import { openArrayFile, type ArrayFile } from './npz';
import { ITEM_SIZE, type NpyArray, type NpyData } from './npy';
import { checkNtuOptions, ntuToModel, NTU_CHANNELS, NTU_FRAME_SIZE, NTU_JOINTS, NTU_PERSONS, type NtuOptions } from './ntu';
import { classIndices, shapeText, type ClassLayout } from './labels';
import type { TensorInfo, WireTensor } from './runnerProtocol';

export interface DatasetSpec {
  /** .npz or .npy file. */
  data: string;
  /** Model input name → array key. Default: by name, or the single input ← the single data array. */
  inputs?: Record<string, string>;
  /** Array with labels: class indices (N, …) or one-hot/scores (N, …, C) (labels.ts). null = no labels. Default: y_test / y / labels if present. */
  labels?: string | null;
  /** 'ntu': x (N, 300, 150) → (N, 3, T, 25, 2), CTR-GCN test-time resampling. */
  preset?: 'ntu' | 'none';
  ntu?: Partial<NtuOptions>;
  /** Use only the first `limit` samples. */
  limit?: number;
}

export interface Batch {
  /** Index of the first sample. */
  start: number;
  count: number;
  feeds: Record<string, WireTensor>;
}

interface InputBinding {
  input: TensorInfo;
  array: NpyArray;
  key: string;
  /** Convert between float widths (numpy's default float64 into a float32 model). */
  convertTo?: 'float32' | 'float64';
}

const LABEL_KEYS = ['y_test', 'y', 'labels', 'label', 'y_val'];
const NTU_X_KEYS = ['x_test', 'x', 'x_val'];

export class Dataset {
  /** Bytes of prepared batches kept in memory per dataset. */
  static memoLimit = 256 * 1024 * 1024;
  private hashValue: string | undefined;
  private readonly memo = new Map<string, Batch>();
  private memoBytes = 0;
  /** Checked class indices of all used samples, per class layout (the last one also serves allLabels). */
  private readonly indices = new Map<string, Int32Array>();
  private lastIndices: Int32Array | undefined;

  /** Use Dataset.open / loadDataset; this binds already checked arrays. */
  constructor(
    readonly spec: DatasetSpec,
    private readonly file: ArrayFile,
    private readonly bindings: InputBinding[],
    private readonly labelArray: NpyArray | undefined,
    readonly labelKey: string | undefined,
    /** Samples used (after `limit`). */
    readonly size: number,
    readonly ntu: NtuOptions | undefined,
    /** A subset view (`subset`): the sample indices it serves, in order; its parent owns the file. */
    private readonly rows?: Int32Array,
  ) {}

  /**
   * A view serving only the samples at `indices` (ascending, within `size`), as samples 0…n−1:
   * the sweep's calibration subset. It shares this dataset's open file; closing it keeps the file open.
   */
  subset(indices: Int32Array): Dataset {
    for (let i = 0; i < indices.length; i++) {
      const r = indices[i];
      if (!(Number.isInteger(r) && r >= 0 && r < this.size && (i === 0 || r > indices[i - 1]))) {
        throw new RankscopeError('BAD_ARGUMENT', `subset: index ${r} at position ${i} is not ascending within the ${this.size} samples.`);
      }
    }
    const rows = this.rows ? Int32Array.from(indices, (i) => this.rows![i]) : indices;
    return new Dataset(this.spec, this.file, this.bindings, this.labelArray, this.labelKey, indices.length, this.ntu, rows);
  }

  /** Opens `spec.data` and binds its arrays to `modelInputs`, or throws naming what does not fit. */
  static async open(spec: DatasetSpec, modelInputs: TensorInfo[]): Promise<Dataset> {
    const file = await openArrayFile(spec.data);
    try {
      return await bind(file, spec, modelInputs);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  get inputKeys(): Record<string, string> {
    return Object.fromEntries(this.bindings.map((b) => [b.input.name, b.key]));
  }

  get hasLabels(): boolean {
    return this.labelArray !== undefined;
  }

  /** The labels array's shape over the used samples, when there are labels. */
  get labelShape(): number[] | undefined {
    return this.labelArray ? [this.size, ...this.labelArray.shape.slice(1)] : undefined;
  }

  /** `file:key` of the labels, for messages. */
  get labelName(): string | undefined {
    return this.labelArray?.label;
  }

  /**
   * The class index of every position of every used sample for an output with dims `dims` and
   * class layout `layout`, checked (labels.ts: integers in range, one-hot rows with one class);
   * read once per layout. Undefined without labels.
   */
  async classIndices(dims: readonly number[], layout: ClassLayout, output: string, signal?: AbortSignal): Promise<Int32Array | undefined> {
    if (!this.labelArray) return undefined;
    const key = `${output}:${layout.axis}:${dims.slice(1).join('x')}`;
    let found = this.indices.get(key);
    if (!found) {
      const data = await this.readRows(this.labelArray, 0, this.size, signal);
      found = classIndices(data, this.labelArray.dtype, this.labelShape!, dims, layout, 0, this.size, output, this.labelArray.label);
      this.indices.set(key, found);
    }
    this.lastIndices = found;
    return found;
  }

  /** Batches in order over the first `samples` (default all); the last one may be short. */
  async *batches(batchSize: number, signal?: AbortSignal, samples = this.size): AsyncGenerator<Batch> {
    if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new RankscopeError('BAD_ARGUMENT', `batch size must be an integer ≥ 1; got ${batchSize}.`);
    const end = Math.min(samples, this.size);
    for (let start = 0; start < end; start += batchSize) {
      throwIfCancelled(signal);
      yield await this.batch(start, Math.min(batchSize, end - start), signal);
    }
  }

  /**
   * Samples [start, start+count) as model inputs. Batches of a small dataset are kept in memory
   * once prepared (a sweep evaluates the same data dozens of times; inflating and resampling it
   * each time cost more than the inference). Each call returns its own copy: callers may transfer it.
   */
  async batch(start: number, count: number, signal?: AbortSignal): Promise<Batch> {
    const key = `${start}:${count}`;
    const hit = this.memo.get(key);
    if (hit) return cloneBatch(hit);
    const batch = await this.readBatch(start, count, signal);
    const bytes = Object.values(batch.feeds).reduce((s, t) => s + t.data.byteLength, 0);
    if (this.memoBytes + bytes <= Dataset.memoLimit) {
      this.memo.set(key, cloneBatch(batch));
      this.memoBytes += bytes;
    }
    return batch;
  }

  private async readBatch(start: number, count: number, signal?: AbortSignal): Promise<Batch> {
    const feeds: Record<string, WireTensor> = {};
    for (const b of this.bindings) {
      let data = await this.readRows(b.array, start, count, signal);
      let dims = [count, ...b.array.shape.slice(1)];
      if (this.ntu) {
        data = ntuToModel(data as Float32Array, count, b.array.shape[1], this.ntu);
        dims = [count, NTU_CHANNELS, this.ntu.frames, NTU_JOINTS, NTU_PERSONS];
      } else if (b.convertTo === 'float32') {
        data = Float32Array.from(data as Float64Array);
      } else if (b.convertTo === 'float64') {
        data = Float64Array.from(data as Float32Array);
      }
      feeds[b.input.name] = { type: b.convertTo ?? b.input.type, dims, data };
    }
    return { start, count, feeds };
  }

  /**
   * All labels of the used samples as class indices: those of the last layout an evaluation
   * checked them against, else read as (N,) indices or (N, C) one-hot rows (checked, but the
   * range of indices only against the int32 limit: MetricAccumulator checks it against C).
   */
  async allLabels(signal?: AbortSignal): Promise<Int32Array | undefined> {
    if (!this.labelArray) return undefined;
    if (this.lastIndices) return this.lastIndices;
    const shape = this.labelShape!;
    const classes = shape.length === 2 ? shape[1] : 2 ** 31 - 1;
    const layout = { axis: 1, classes, before: 1, after: 1 };
    return classIndices(await this.readRows(this.labelArray, 0, this.size, signal), this.labelArray.dtype, shape, [this.size, classes], layout, 0, this.size, 'the model', this.labelArray.label);
  }

  /** Identifies the data as evaluated: file content (streamed), mapping, preset and limit. */
  async hash(signal?: AbortSignal): Promise<string> {
    if (this.hashValue) return this.hashValue;
    const h = createHash('sha256');
    h.update(JSON.stringify({ inputs: this.inputKeys, labels: this.labelKey ?? null, ntu: this.ntu ?? null, size: this.size, ...(this.rows && { rows: Array.from(this.rows) }) }));
    await hashFile(this.spec.data, h, signal);
    this.hashValue = h.digest('hex');
    return this.hashValue;
  }

  /**
   * Completes the integrity check of every array in use (an .npz member's CRC-32): free after a
   * full pass over the data, which checks as it reads; otherwise reads the unchecked rest.
   */
  async verify(signal?: AbortSignal): Promise<void> {
    for (const array of [...this.bindings.map((b) => b.array), ...(this.labelArray ? [this.labelArray] : [])]) await array.verify(signal);
  }

  async close(): Promise<void> {
    this.memo.clear();
    if (!this.rows) await this.file.close();
  }

  /** Samples [start, start+count) of `array` (of a subset: its rows, read run by run of consecutive indices). */
  private async readRows(array: NpyArray, start: number, count: number, signal?: AbortSignal): Promise<NpyData> {
    if (!this.rows) return array.readRows(start, count, signal);
    const parts: NpyData[] = [];
    for (let i = start; i < start + count;) {
      let j = i + 1;
      while (j < start + count && this.rows[j] === this.rows[j - 1] + 1) j++;
      parts.push(await array.readRows(this.rows[i], j - i, signal));
      i = j;
    }
    if (parts.length === 1) return parts[0];
    const out = new (parts[0].constructor as new (n: number) => NpyData)(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      (out as unknown as { set(a: ArrayLike<number | bigint>, at: number): void }).set(p as ArrayLike<number | bigint>, at);
      at += p.length;
    }
    return out;
  }
}

function cloneBatch(b: Batch): Batch {
  const feeds: Record<string, WireTensor> = {};
  for (const [name, t] of Object.entries(b.feeds)) feeds[name] = { type: t.type, dims: [...t.dims], data: t.data.slice() as WireTensor['data'] };
  return { start: b.start, count: b.count, feeds };
}

export function loadDataset(spec: DatasetSpec, modelInputs: TensorInfo[]): Promise<Dataset> {
  return Dataset.open(spec, modelInputs);
}

/** Files up to this size are hashed whole; bigger ones by size, mtime and their first and last MiB. */
const FULL_HASH_LIMIT = 2 * 1024 * 1024 * 1024;

async function hashFile(path: string, h: ReturnType<typeof createHash>, signal?: AbortSignal): Promise<void> {
  const { size, mtimeMs } = await stat(path);
  const ranges: [number, number][] = size <= FULL_HASH_LIMIT ? [[0, size - 1]] : [[0, (1 << 20) - 1], [size - (1 << 20), size - 1]];
  if (size > FULL_HASH_LIMIT) h.update(`${size}:${mtimeMs}`);
  for (const [start, end] of ranges) {
    if (end < start) continue;
    for await (const chunk of createReadStream(path, { start, end, highWaterMark: 4 << 20 })) {
      throwIfCancelled(signal);
      h.update(chunk as Buffer);
    }
  }
}

async function bind(file: ArrayFile, spec: DatasetSpec, modelInputs: TensorInfo[]): Promise<Dataset> {
  const where = file.path;
  const preset = spec.preset === 'ntu' ? 'ntu' : undefined;
  if (modelInputs.length === 0) throw new RankscopeError('UNSUPPORTED', 'the model has no inputs to feed.');
  // Label array: explicit, or a conventional name.
  let labelKey: string | undefined;
  if (spec.labels === null) labelKey = undefined;
  else if (spec.labels !== undefined) {
    if (!file.keys.includes(spec.labels)) throw new RankscopeError('NOT_FOUND', `${where}: no labels array '${spec.labels}'.`, `Arrays in this file: ${file.keys.join(', ')}.`);
    labelKey = spec.labels;
  } else {
    labelKey = LABEL_KEYS.find((k) => file.keys.includes(k));
  }
  // Input mapping: explicit, by name, or the one input ← the one remaining array (x_test for NTU).
  const mapping: Record<string, string> = { ...(spec.inputs ?? {}) };
  for (const name of Object.keys(mapping)) {
    if (!modelInputs.some((i) => i.name === name)) {
      throw new RankscopeError('BAD_ARGUMENT', `the model has no input '${name}'.`, `Its inputs: ${modelInputs.map((i) => i.name).join(', ')}.`);
    }
  }
  for (const input of modelInputs) {
    if (mapping[input.name]) continue;
    if (file.keys.includes(input.name)) { mapping[input.name] = input.name; continue; }
    const candidates = preset
      ? NTU_X_KEYS.filter((k) => file.keys.includes(k)).slice(0, 1)
      : file.keys.filter((k) => k !== labelKey && !Object.values(mapping).includes(k));
    const preferred = candidates.length > 1 ? candidates.filter((k) => /^(x_test|x|input|inputs|data)$/.test(k)) : candidates;
    if (modelInputs.length === 1 && preferred.length === 1) { mapping[input.name] = preferred[0]; continue; }
    throw new RankscopeError('BAD_ARGUMENT', `${where}: which array feeds the model input '${input.name}'?`,
      `Say it with "inputs": { "${input.name}": "<array>" } in rankscope.json. Arrays in this file: ${file.keys.join(', ')}.`);
  }
  const bindings: InputBinding[] = [];
  let n: number | undefined;
  let nKey = '';
  let ntu: NtuOptions | undefined;
  for (const input of modelInputs) {
    const key = mapping[input.name];
    const array = await file.array(key);
    const label = `${where}:${key}`;
    if (input.type === 'non-tensor') throw new RankscopeError('UNSUPPORTED', `model input '${input.name}' is not a tensor.`);
    if (array.shape.length === 0) throw new RankscopeError('SHAPE_MISMATCH', `${label} is a 0-d array; model input '${input.name}' needs a batch of shape ${shapeText(input.shape)}.`);
    let convertTo: InputBinding['convertTo'];
    if (preset) {
      ntu = ntuOptionsFor(input, spec.ntu, label);
      if (array.dtype !== 'float32' || array.shape.length !== 3 || array.shape[2] !== NTU_FRAME_SIZE) {
        throw new RankscopeError('SHAPE_MISMATCH', `${label} has shape ${shapeText(array.shape)} ${array.dtype}; the NTU preset expects (N, 300, 150) float32 (300 frames × 2 persons × 25 joints × 3).`,
          'Use the CTR-GCN style .npz (x_test, y_test), or drop --preset ntu and feed arrays already shaped for the model.');
      }
    } else {
      const modelDims = input.shape;
      const rankOk = modelDims.length === 0 || modelDims.length === array.shape.length;
      const dimsOk = rankOk && modelDims.every((d, i) => i === 0 || typeof d !== 'number' || d < 0 || d === array.shape[i]);
      if (!dimsOk) {
        throw new RankscopeError('SHAPE_MISMATCH',
          `${label} has shape ${shapeText(array.shape)}; model input '${input.name}' expects ${shapeText(modelDims.map((d) => (typeof d === 'number' && d >= 0 ? d : '?')))} (first axis = batch).`,
          'Reshape the array when saving it, or use a preset (--preset ntu for NTU skeleton data).');
      }
      if (array.dtype !== input.type) {
        const floats = ['float32', 'float64'];
        if (floats.includes(array.dtype) && floats.includes(input.type)) convertTo = input.type as 'float32' | 'float64';
        else {
          throw new RankscopeError('SHAPE_MISMATCH', `${label} holds ${array.dtype}; model input '${input.name}' takes ${input.type}.`,
            `Save it as ${input.type} (numpy: a.astype('${input.type === 'bool' ? 'bool' : input.type}')).`);
        }
      }
    }
    if (n !== undefined && array.shape[0] !== n) {
      throw new RankscopeError('SHAPE_MISMATCH', `${label} has ${array.shape[0]} samples but ${where}:${nKey} has ${n}; inputs must have the same first axis.`);
    }
    n = array.shape[0];
    nKey = key;
    bindings.push({ input, array, key, convertTo });
  }
  let labelArray: NpyArray | undefined;
  if (labelKey) {
    labelArray = await file.array(labelKey);
    const label = `${where}:${labelKey}`;
    const s = labelArray.shape;
    if (s.length < 1) {
      throw new RankscopeError('SHAPE_MISMATCH', `${label} is a 0-d array; labels must be class indices (N,) or one-hot (N, classes).`);
    }
    if (s[0] !== n) throw new RankscopeError('SHAPE_MISMATCH', `${label} has ${s[0]} labels but ${where}:${nKey} has ${n} samples.`);
  }
  let size = n!;
  if (spec.limit !== undefined) {
    if (!(Number.isInteger(spec.limit) && spec.limit >= 1)) throw new RankscopeError('BAD_ARGUMENT', `limit must be an integer ≥ 1; got ${spec.limit}.`);
    size = Math.min(size, spec.limit);
  }
  if (size === 0) throw new RankscopeError('SHAPE_MISMATCH', `${where}:${nKey} has no samples (first axis is 0).`);
  // Small members are checked now, before any model runs on them; bigger ones as they are read (Dataset.verify).
  for (const array of [...bindings.map((b) => b.array), ...(labelArray ? [labelArray] : [])]) {
    if (array.size * ITEM_SIZE[array.dtype] <= VERIFY_AT_OPEN_BYTES) await array.verify();
  }
  return new Dataset(spec, file, bindings, labelArray, labelKey, size, ntu);
}

/** Arrays up to this size get their checksum verified when the dataset opens (a second pass over them is cheap). */
const VERIFY_AT_OPEN_BYTES = 64 * 1024 * 1024;

function ntuOptionsFor(input: TensorInfo, given: Partial<NtuOptions> | undefined, label: string): NtuOptions {
  const dims = input.shape;
  const fixed = (i: number) => (typeof dims[i] === 'number' && (dims[i] as number) >= 0 ? (dims[i] as number) : undefined);
  if (input.type !== 'float32') throw new RankscopeError('SHAPE_MISMATCH', `NTU preset: model input '${input.name}' takes ${input.type}; the preset produces float32.`);
  const expected = [NTU_CHANNELS, undefined, NTU_JOINTS, NTU_PERSONS];
  const fits = dims.length === 5 && expected.every((e, i) => e === undefined || fixed(i + 1) === undefined || fixed(i + 1) === e);
  if (!fits) {
    throw new RankscopeError('SHAPE_MISMATCH', `NTU preset: model input '${input.name}' has shape ${shapeText(dims)}; the preset feeds (N, 3, T, 25, 2) from ${label}.`,
      'Use a CTR-GCN style model, or drop --preset ntu.');
  }
  const modelT = fixed(2);
  if (given?.frames !== undefined && modelT !== undefined && given.frames !== modelT) {
    throw new RankscopeError('SHAPE_MISMATCH', `NTU preset: frames ${given.frames} given, but model input '${input.name}' takes T = ${modelT}.`);
  }
  const frames = modelT ?? given?.frames;
  if (frames === undefined) {
    throw new RankscopeError('BAD_ARGUMENT', `NTU preset: model input '${input.name}' has a symbolic T; say how many frames to feed.`, 'Set "ntu": { "frames": 64 } in rankscope.json.');
  }
  const options = { crop: 0.95, resample: 'linear' as const, ...given, frames };
  checkNtuOptions(options);
  return options;
}
