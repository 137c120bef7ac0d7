// Factors ↔ stored tensors: per-group canonical factors (A: m×k, B: k×n, row-major) to the two
// tensors written into the model, in the original weight's layout (see rewrite.ts), and back.
import type { MatrixLayout } from '../model/types';
import type { Factors } from './factor';

export interface StoredFactor {
  dims: number[];
  data: Float64Array;
}

function transpose(src: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j];
  return out;
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** [A, B] as stored. `tensorShape` is the original weight's (needed for conv kernels). */
export function storeFactors(layout: MatrixLayout, groups: Factors[], tensorShape: readonly number[]): [StoredFactor, StoredFactor] {
  const { m, n, k } = groups[0];
  switch (layout) {
    case 'out_in':
      return [{ dims: [m, k], data: groups[0].a }, { dims: [k, n], data: groups[0].b }];
    case 'in_out':
      return [{ dims: [k, m], data: transpose(groups[0].a, m, k) }, { dims: [n, k], data: transpose(groups[0].b, k, n) }];
    case 'conv': {
      const spatial = tensorShape.slice(2);
      return [
        { dims: [m * groups.length, k, ...spatial.map(() => 1)], data: concat(groups.map((g) => g.a)) },
        { dims: [k * groups.length, ...tensorShape.slice(1)], data: concat(groups.map((g) => g.b)) },
      ];
    }
  }
}

/** Canonical per-group (a, b) from the stored A and B values. */
export function loadFactors(layout: MatrixLayout, a: { dims: readonly number[]; data: Float32Array }, b: { dims: readonly number[]; data: Float32Array }, groups: number): { m: number; n: number; k: number; a: Float64Array; b: Float64Array }[] {
  switch (layout) {
    case 'out_in': {
      const [m, k] = a.dims;
      return [{ m, k, n: b.dims[1], a: Float64Array.from(a.data), b: Float64Array.from(b.data) }];
    }
    case 'in_out': {
      const [k, m] = a.dims;
      const n = b.dims[0];
      return [{ m, k, n, a: transpose(a.data, k, m), b: transpose(b.data, n, k) }];
    }
    case 'conv': {
      const k = a.dims[1];
      const m = a.dims[0] / groups;
      const n = b.dims.slice(1).reduce((x, y) => x * y, 1);
      return Array.from({ length: groups }, (_, g) => ({
        m, n, k,
        a: Float64Array.from(a.data.subarray(g * m * k, (g + 1) * m * k)),
        b: Float64Array.from(b.data.subarray(g * k * n, (g + 1) * k * n)),
      }));
    }
  }
}

/** The dense stored weight from per-group canonical matrices (restore). */
export function storeDense(layout: MatrixLayout, matrices: { m: number; n: number; data: Float64Array }[], tensorShape: readonly number[]): StoredFactor {
  const { m, n } = matrices[0];
  switch (layout) {
    case 'out_in': return { dims: [m, n], data: matrices[0].data };
    case 'in_out': return { dims: [n, m], data: transpose(matrices[0].data, m, n) };
    case 'conv': return { dims: [...tensorShape], data: concat(matrices.map((x) => x.data)) };
  }
}
