// The canonical matrix of a layer: row-major [out, in] float32, one entry per conv group.
// Every consumer (spectra, compression, the webviews) reads weights through this, so the
// layout rules (MatrixLayout in types.ts) live in one place.
import { RankscopeError } from '../errors';
import type { Layer, Model } from './types';

export interface LayerMatrix {
  rows: number;
  cols: number;
  /** Fresh array (owns its buffer: safe to mutate or transfer to a worker thread). */
  data: Float32Array;
}

/**
 * With `transposeOk` (singular values, which a transpose does not change), in_out weights come as
 * stored, [in, out], instead of being transposed on the caller's thread.
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
      if (transposeOk) return [{ rows: cols, cols: rows, data: values }];
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
