// Input Grams XᵀX of layers, folded batch by batch from their input activations, in float64,
// without keeping the activations. Runs inside the ONNX Runtime worker thread (ortWorker.ts), so
// activations never cross a thread boundary: only the n×n sums come back. The input vectors a
// layer's weight multiplies (its "rows"):
// - 'rows': vectors along the last axis (MatMul(x, W), Gemm(X, W) with transA = 0, …);
// - 'cols': vectors along the second-to-last axis (MatMul(W, x), Gemm with transA = 1, …);
// - 'conv': the patches the kernel sees (im2col over the kernel window with strides, pads and
//   dilations; zero outside the input), one Gram per group of input channels;
// - 'index': a Gather's indices: the count of each index (its Gram is diagonal).
// Float32 products are exact in float64, so only the sums round (≈1e-16 relative).
import { gramToKernelMemory } from '../linalg/gram';
import { kernelMemory } from '../linalg/wasm';

export type ActivationSpec =
  | { id: number; output: string; kind: 'rows' | 'cols'; width: number; label: string }
  | { id: number; output: string; kind: 'conv'; width: number; label: string; conv: ConvGeometry }
  | { id: number; output: string; kind: 'index'; width: number; label: string };

export interface ConvGeometry {
  groups: number;
  /** Input channels (all groups). */
  channels: number;
  kernel: number[];
  strides: number[];
  /** [begin…, end…] as ONNX; ignored unless autoPad is NOTSET. */
  pads: number[];
  dilations: number[];
  autoPad: 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
}

export interface FoldedGram {
  id: number;
  /** One n×n row-major symmetric Gram per group; 'index': one array of counts. */
  groups: Float64Array[];
  /** Input vectors folded (per group); 'index': indices counted. */
  vectors: number;
  /** The activation's dims in the first batch. */
  shape: number[];
}

/** Rows buffered before a Gram pass: at least the width (XᵀX needs rows ≥ cols), else about 256 K values. */
function chunkRows(width: number): number {
  return Math.max(width, Math.ceil((256 << 10) / Math.max(1, width)));
}

/** One layer input's running Gram(s). */
export class GramAccumulator {
  private readonly sums: Float64Array[];
  private readonly buffers: Float32Array[];
  private readonly fill: number[];
  private vectors = 0;
  private shape: number[] | undefined;

  constructor(readonly spec: ActivationSpec) {
    const groups = spec.kind === 'conv' ? spec.conv.groups : 1;
    const n = spec.width;
    this.sums = Array.from({ length: groups }, () => new Float64Array(spec.kind === 'index' ? n : n * n));
    this.buffers = spec.kind === 'index' ? [] : Array.from({ length: groups }, () => new Float32Array(chunkRows(n) * n));
    this.fill = new Array(groups).fill(0);
  }

  /** Folds one batch of the activation (dims, values). Throws (a message naming the layer) on NaN/Inf or a shape that does not fit. */
  add(dims: readonly number[], data: ArrayLike<number | bigint>): void {
    this.shape ??= [...dims];
    const { spec } = this;
    if (spec.kind === 'index') return this.addIndices(data);
    const values = data as ArrayLike<number>;
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw new Error(`NUMERIC:${spec.label}: its input activation '${spec.output}' holds NaN or Inf (element ${i} of a batch of shape ${dims.join('×')}).`);
    }
    if (spec.kind === 'conv') return this.addConv(dims, values, spec.conv);
    const n = spec.width;
    const last = dims[dims.length - 1];
    if (spec.kind === 'rows') {
      if (dims.length < 1 || last !== n) throw shapeError(spec, dims, `last axis ${n}`);
      for (let r = 0, rows = values.length / n; r < rows; r++) this.push(0, values, r * n);
      return;
    }
    const k = dims[dims.length - 2];
    if (dims.length < 2 || k !== n) throw shapeError(spec, dims, `second-to-last axis ${n}`);
    const row = new Float32Array(n);
    for (let b = 0, slabs = values.length / (n * last); b < slabs; b++) {
      const base = b * n * last;
      for (let j = 0; j < last; j++) {
        for (let i = 0; i < n; i++) row[i] = values[base + i * last + j];
        this.push(0, row, 0);
      }
    }
  }

  private addIndices(data: ArrayLike<number | bigint>): void {
    const counts = this.sums[0];
    const n = this.spec.width;
    for (let i = 0; i < data.length; i++) {
      let index = Number(data[i]);
      if (index < 0) index += n; // Gather allows negative indices
      if (!(Number.isInteger(index) && index >= 0 && index < n)) throw new Error(`SHAPE_MISMATCH:${this.spec.label}: index ${Number(data[i])} is outside its ${n} rows.`);
      counts[index]++;
    }
    this.vectors += data.length;
  }

  private addConv(dims: readonly number[], values: ArrayLike<number>, c: ConvGeometry): void {
    const spec = this.spec;
    const d = c.kernel.length;
    if (dims.length !== d + 2 || dims[1] !== c.channels) throw shapeError(spec, dims, `(N, ${c.channels}, ${d} spatial axes)`);
    const spatial = dims.slice(2);
    const { begin, out } = convWindow(spatial, c);
    const perGroup = c.channels / c.groups;
    const kernelSize = c.kernel.reduce((a, b) => a * b, 1);
    // Per kernel element: its offset along each spatial axis (dilated).
    const offsets = Array.from({ length: kernelSize }, (_, kk) => {
      const o = new Array<number>(d);
      for (let a = d - 1, rest = kk; a >= 0; a--) { o[a] = (rest % c.kernel[a]) * c.dilations[a]; rest = Math.floor(rest / c.kernel[a]); }
      return o;
    });
    const strideIn = new Array<number>(d);
    for (let a = d - 1, s = 1; a >= 0; a--) { strideIn[a] = s; s *= spatial[a]; }
    const plane = spatial.reduce((a, b) => a * b, 1);
    const positions = out.reduce((a, b) => a * b, 1);
    const row = new Float32Array(spec.width);
    const origin = new Array<number>(d);
    // Input offset within a channel plane of each kernel element at the current output position (−1: padding).
    const at = new Int32Array(kernelSize);
    for (let nIdx = 0; nIdx < dims[0]; nIdx++) {
      for (let pos = 0; pos < positions; pos++) {
        for (let a = d - 1, rest = pos; a >= 0; a--) { origin[a] = (rest % out[a]) * c.strides[a] - begin[a]; rest = Math.floor(rest / out[a]); }
        for (let kk = 0; kk < kernelSize; kk++) {
          let index = 0;
          for (let a = 0; a < d; a++) {
            const x = origin[a] + offsets[kk][a];
            if (x < 0 || x >= spatial[a]) { index = -1; break; }
            index += x * strideIn[a];
          }
          at[kk] = index;
        }
        for (let g = 0; g < c.groups; g++) {
          for (let ch = 0; ch < perGroup; ch++) {
            const base = (nIdx * c.channels + g * perGroup + ch) * plane;
            const r = ch * kernelSize;
            for (let kk = 0; kk < kernelSize; kk++) row[r + kk] = at[kk] < 0 ? 0 : values[base + at[kk]];
          }
          this.push(g, row, 0);
        }
      }
    }
  }

  /** Appends one input vector (n values of `src` from `offset`) to group g's buffer; folds a full buffer. */
  private push(g: number, src: ArrayLike<number>, offset: number): void {
    const n = this.spec.width;
    const buffer = this.buffers[g];
    const at = this.fill[g] * n;
    for (let i = 0; i < n; i++) buffer[at + i] = src[offset + i];
    if (g === 0) this.vectors++;
    if (++this.fill[g] * n === buffer.length) this.flush(g);
  }

  private flush(g: number): void {
    const n = this.spec.width;
    const rows = this.fill[g];
    if (rows === 0) return;
    // XᵀX needs rows ≥ cols; zero rows add nothing.
    const used = Math.max(rows, n);
    if (rows < n) this.buffers[g].fill(0, rows * n, used * n);
    const layout = gramToKernelMemory(this.buffers[g].subarray(0, used * n), used, n, 0, false);
    const F = kernelBuffer(layout.g, n);
    const unscale = 1 / (layout.scale * layout.scale);
    const sum = this.sums[g];
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) sum[i * n + j] += F[i * n + j] * unscale;
    this.fill[g] = 0;
  }

  /** The Grams so far (both triangles filled), counts for 'index'. */
  finish(): FoldedGram {
    const n = this.spec.width;
    if (this.spec.kind !== 'index') {
      for (let g = 0; g < this.sums.length; g++) {
        this.flush(g);
        const sum = this.sums[g];
        for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) sum[j * n + i] = sum[i * n + j];
      }
    }
    return { id: this.spec.id, groups: this.sums, vectors: this.vectors, shape: this.shape ?? [] };
  }
}

/** The kernel memory view holding G (lower triangle) after gramToKernelMemory; read before the next kernel call. */
function kernelBuffer(g: number, n: number): Float64Array {
  return kernelMemory(g + n * n).subarray(g, g + n * n);
}

/** Padding at the start of each spatial axis and the output size, ONNX Conv rules (auto_pad included). */
export function convWindow(spatial: readonly number[], c: Pick<ConvGeometry, 'kernel' | 'strides' | 'pads' | 'dilations' | 'autoPad'>): { begin: number[]; out: number[] } {
  const d = spatial.length;
  const begin: number[] = [];
  const out: number[] = [];
  for (let a = 0; a < d; a++) {
    const span = c.dilations[a] * (c.kernel[a] - 1) + 1;
    if (c.autoPad === 'SAME_UPPER' || c.autoPad === 'SAME_LOWER') {
      const o = Math.ceil(spatial[a] / c.strides[a]);
      const total = Math.max(0, (o - 1) * c.strides[a] + span - spatial[a]);
      begin.push(c.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2));
      out.push(o);
    } else {
      const [pb, pe] = c.autoPad === 'VALID' ? [0, 0] : [c.pads[a] ?? 0, c.pads[a + d] ?? 0];
      begin.push(pb);
      out.push(Math.floor((spatial[a] + pb + pe - span) / c.strides[a]) + 1);
    }
  }
  return { begin, out };
}

function shapeError(spec: ActivationSpec, dims: readonly number[], want: string): Error {
  return new Error(`SHAPE_MISMATCH:${spec.label}: its input activation '${spec.output}' has shape ${dims.join('×')}; the weight needs ${want}.`);
}
