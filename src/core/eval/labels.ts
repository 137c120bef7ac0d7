// Which axis of a model output holds the class scores, and labels checked against it.
// An output is (N, …before, C, …after): every position of `before × after` is one prediction
// (one for an (N, C) classifier, T for a recogniser's (N, T, C), H·W for a segmenter's
// (N, C, H, W)). Labels are class indices with the output's shape minus the class axis, or
// one-hot/scores with the output's shape. Nothing is guessed: an output whose class axis is not
// clear is refused unless the caller names the axis, and a label that is not a class of the
// output is an error naming the sample — never a silently wrong score.
import { RankscopeError } from '../errors';
import { float16ToFloat32 } from '../model/float16';
import type { NpyData, NpyDType } from './npy';

export interface ClassLayout {
  /** Axis of the full output dims (batch = 0) that holds the classes. */
  axis: number;
  classes: number;
  /** Product of the per-sample dims before / after the class axis: positions per sample = before·after. */
  before: number;
  after: number;
}

export interface ClassAxisRequest {
  /** The output's name, for messages. */
  output: string;
  /** Axis named by the user (negative counts from the end), if any. */
  classAxis?: number;
  /** Shape of the labels array, when labels are scored. */
  labelShape?: readonly number[];
  /** The labels array as `file:key`, for messages. */
  labelName?: string;
}

const FIDELITY_HINT = 'For a fidelity-only evaluation (no labels), use --labels none --compare ORIGINAL.onnx.';

export function shapeText(shape: readonly (number | string | null)[]): string {
  return `(${shape.map((d) => (d === null || (typeof d === 'number' && d < 0) ? '?' : d)).join(', ')}${shape.length === 1 ? ',' : ''})`;
}

/**
 * The class layout of an output with (full) dims `dims`, or undefined when it has no clear class
 * axis and no labels need one (fidelity then covers the relative error only). Throws BAD_ARGUMENT
 * for an axis that is out of range, ambiguous with labels, or that the labels do not fit.
 */
export function classLayout(dims: readonly number[], request: ClassAxisRequest): ClassLayout | undefined {
  const rank = dims.length;
  const shown = shapeText(['N', ...dims.slice(1)]);
  const { output, labelShape, labelName } = request;
  let axis: number | undefined;
  if (request.classAxis !== undefined) {
    const given = request.classAxis;
    axis = given < 0 ? rank + given : given;
    if (!Number.isInteger(given) || axis < 1 || axis >= rank) {
      throw new RankscopeError('BAD_ARGUMENT', `class axis ${given} is not an axis of output '${output}' ${shown}${rank > 1 ? `: give 1…${rank - 1} (0 is the batch)` : ''}.`,
        rank > 1 ? undefined : 'This output holds one value per sample; there are no classes to score.');
    }
  } else if (rank === 2) {
    axis = 1;
  } else if (rank > 2) {
    const wide = range(1, rank).filter((a) => dims[a] !== 1);
    if (wide.length === 1) axis = wide[0];
    else if (labelShape) {
      // The labels can settle it: index labels have the output's shape with the class axis removed.
      const fits = range(1, rank).filter((a) => sameDims(labelShape.slice(1), [...dims.slice(1, a), ...dims.slice(a + 1)]));
      if (fits.length === 1) axis = fits[0];
      else {
        throw new RankscopeError('BAD_ARGUMENT', `output '${output}' has shape ${shown}: which axis holds the classes? Give --class-axis (${(fits.length > 1 ? fits : range(1, rank)).join(' or ')}).`,
          FIDELITY_HINT);
      }
    }
  }
  if (axis === undefined) {
    if (labelShape) {
      throw new RankscopeError('BAD_ARGUMENT', `output '${output}' has shape ${shown}, one value per sample: there are no class scores to check ${labelName ?? 'the labels'} against.`,
        `Score the output with the class scores (--output NAME). ${FIDELITY_HINT}`);
    }
    return undefined;
  }
  const layout: ClassLayout = { axis, classes: dims[axis], before: product(dims.slice(1, axis)), after: product(dims.slice(axis + 1)) };
  if (labelShape) labelForm(layout, dims, labelShape, output, labelName ?? 'the labels');
  return layout;
}

/** 'index' or 'one-hot' from the labels' shape, or BAD_ARGUMENT saying which shapes would fit. */
function labelForm(layout: ClassLayout, dims: readonly number[], labelShape: readonly number[], output: string, labelName: string): 'index' | 'one-hot' {
  const perSample = dims.slice(1);
  const indexDims = [...dims.slice(1, layout.axis), ...dims.slice(layout.axis + 1)];
  // Index labels saved as a column, (N, 1), are common; with more than one class they are unambiguous.
  if (sameDims(labelShape.slice(1), indexDims) || (layout.classes !== 1 && sameDims(labelShape.slice(1), [...indexDims, 1]))) return 'index';
  if (sameDims(labelShape.slice(1), perSample)) return 'one-hot';
  const where = layout.before * layout.after > 1 ? ` on axis ${layout.axis} of ${shapeText(['N', ...perSample])}` : '';
  throw new RankscopeError('SHAPE_MISMATCH',
    `${labelName} has shape ${shapeText(labelShape)}; output '${output}' has ${layout.classes} classes${where}, so labels must be class indices ${shapeText(['N', ...indexDims])} or one-hot ${shapeText(['N', ...perSample])}.`,
    layout.before * layout.after > 1 ? `Name the class axis with --class-axis if it is not ${layout.axis}. ${FIDELITY_HINT}` : 'Check that --output names the class scores and the labels array is the right one.');
}

/**
 * Labels of `count` samples (from sample `first`) as one class index per position
 * (count × before × after, C order), checked: index labels must be integers in [0, classes);
 * one-hot/score rows must be finite with a single largest entry. Errors name the sample.
 */
export function classIndices(data: NpyData, dtype: NpyDType, labelShape: readonly number[], dims: readonly number[], layout: ClassLayout,
  first: number, count: number, output: string, labelName: string): Int32Array {
  const form = labelForm(layout, dims, labelShape, output, labelName);
  const { classes, before, after } = layout;
  const positions = before * after;
  const value: (i: number) => number = dtype === 'float16' ? (i) => float16ToFloat32((data as Uint16Array)[i]) : (i) => Number(data[i]);
  const at = (sample: number, position: number) => `sample ${first + sample}${positions > 1 ? ` at position ${position}` : ''}`;
  const out = new Int32Array(count * positions);
  if (form === 'index') {
    for (let i = 0; i < out.length; i++) {
      const y = value(i);
      if (!Number.isInteger(y)) {
        throw new RankscopeError('SHAPE_MISMATCH', `${labelName}: ${at(Math.floor(i / positions), i % positions)} has label ${y}, which is not a class index.`,
          'Labels must be whole numbers (class indices) or one-hot rows.');
      }
      if (y < 0 || y >= classes) {
        throw new RankscopeError('SHAPE_MISMATCH', `${labelName}: ${at(Math.floor(i / positions), i % positions)} has label ${y}, but output '${output}' has ${classes} classes (0…${classes - 1}).`,
          'Check that the labels belong to this model (and --output names its class scores).');
      }
      out[i] = y;
    }
    return out;
  }
  const perSample = before * classes * after;
  for (let s = 0; s < count; s++) {
    for (let b = 0; b < before; b++) {
      for (let a = 0; a < after; a++) {
        const base = s * perSample + b * classes * after + a;
        let best = -1, bestValue = -Infinity, tie = -1;
        for (let c = 0; c < classes; c++) {
          const v = value(base + c * after);
          if (!Number.isFinite(v)) {
            throw new RankscopeError('SHAPE_MISMATCH', `${labelName}: ${at(s, b * after + a)} has ${v} in its one-hot row (class ${c}).`, 'One-hot or score labels must be finite.');
          }
          if (v > bestValue) { bestValue = v; best = c; tie = -1; } else if (v === bestValue) tie = c;
        }
        if (tie >= 0) {
          throw new RankscopeError('SHAPE_MISMATCH', `${labelName}: ${at(s, b * after + a)} has no single class in its one-hot row (classes ${best} and ${tie} both hold ${bestValue}).`,
            'Each one-hot row needs exactly one largest entry.');
        }
        out[s * positions + b * after + a] = best;
      }
    }
  }
  return out;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}
