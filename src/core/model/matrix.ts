// The canonical matrix of a layer: row-major [out, in] float32, one entry per conv group (or, for
// the worker pools, an in_out weight as stored, flagged as Wᵀ). Every consumer (spectra,
// compression, the webviews) reads weights through this, so the layout rules (MatrixLayout in
// types.ts) live in one place.
import { RankscopeError } from '../errors';
import type { Layer, Model } from './types';

export interface LayerMatrix {
  /** W is rows×cols ([out, in]). */
  rows: number;
  cols: number;
  /** Fresh array (owns its buffer: safe to mutate or transfer to a worker thread): W row-major, or Wᵀ with `transposed`. */
  data: Float32Array;
  /** data holds Wᵀ (cols×rows, row-major): the weight as stored, left for the consumer to read transposed. */
  transposed?: boolean;
}

/** A layer's matrix as the workers take it: float32 weights, or float64 (A·B of a factorized layer). */
export type LayerMatrixData = Omit<LayerMatrix, 'data'> & { data: Float32Array | Float64Array };

/** The row-major shape `data` has: [rows, cols], or [cols, rows] when it holds Wᵀ. */
export function storedShape(m: Pick<LayerMatrix, 'rows' | 'cols' | 'transposed'>): [number, number] {
  return m.transposed ? [m.cols, m.rows] : [m.rows, m.cols];
}

/**
 * With `transposeOk`, in_out weights come as stored, as Wᵀ (`transposed`), for a consumer that can
 * read them that way (singular values are the same; factors of Wᵀ transpose into W's): the
 * caller's thread then does no transpose.
 */
export function layerMatrices(model: Pick<Model, 'tensor'>, layer: Layer, transposeOk = false): LayerMatrix[] {
  const t = model.tensor(layer.weight);
  if (!t) {
    throw new RankscopeError('NOT_FOUND', `Layer '${layer.name}': weight tensor '${layer.weight}' is not in the model.`,
      layer.compressed ? 'The layer is already factorized; restore it first.' : undefined);
  }
  const values = t.toFloat32();
  const [rows, cols] = layer.shape;
  switch (layer.layout) {
    case 'out_in':
      return [{ rows, cols, data: values }];
    case 'in_out': {
      if (transposeOk) return [{ rows, cols, data: values, transposed: true }];
      // Stored [in, out] = [cols, rows]; transpose in cache-friendly blocks.
      const data = new Float32Array(rows * cols);
      const B = 64;
      for (let i0 = 0; i0 < cols; i0 += B) {
        const i1 = Math.min(cols, i0 + B);
        for (let j0 = 0; j0 < rows; j0 += B) {
          const j1 = Math.min(rows, j0 + B);
          for (let i = i0; i < i1; i++) {
            const src = i * rows;
            for (let j = j0; j < j1; j++) data[j * cols + i] = values[src + j];
          }
        }
      }
      return [{ rows, cols, data }];
    }
    case 'conv': {
      // [out, in/g, k…] is already row-major [out, in/g·∏k]; group g owns rows g·out/g ….
      const groups = layer.groups ?? 1;
      const per = rows / groups;
      if (groups === 1) return [{ rows, cols, data: values }];
      return Array.from({ length: groups }, (_, g) => ({ rows: per, cols, data: values.slice(g * per * cols, (g + 1) * per * cols) }));
    }
  }
}
