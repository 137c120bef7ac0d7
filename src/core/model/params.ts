// Parameter accounting over the common model. A layer's own count is Layer.params (for a
// factorized layer: its factors A and B, as stored); what it held before Rankscope factorized it
// and the model totals come from here, so every UI shows the same numbers.
import type { Layer, Model } from './types';

/** Weight parameters of the layer's dense matrix: out × in (convs: out × in/groups·∏kernel). For a
 *  factorized layer, those of the original it replaced. */
export function originalParams(layer: Pick<Layer, 'shape'>): number {
  return layer.shape[0] * layer.shape[1];
}

export interface ParamTotals {
  /** Parameters before any Rankscope compression (dense originals of the factorized layers). */
  original: number;
  /** Parameters of the model as it is on disk. */
  current: number;
}

export function paramTotals(model: Pick<Model, 'summary' | 'layers'>): ParamTotals {
  let original = model.summary.totalParams;
  for (const l of model.layers) if (l.compressed) original += originalParams(l) - l.params;
  return { original, current: model.summary.totalParams };
}
