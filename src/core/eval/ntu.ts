// NTU RGB+D skeleton preset, CTR-GCN layout. Stored: x (N, 300, 150) float32, each frame =
// 2 persons × 25 joints × 3 coordinates; models take (N, C=3, T, V=25, M=2). At test time the
// CTR-GCN feeder counts the valid frames (those whose coordinates do not sum to 0), centre-crops
// them to p = 0.95 and resizes that clip to the model's T by linear interpolation in time
// (F.interpolate, bilinear, align_corners=False). We reproduce that exactly; 'uniform' instead
// picks the nearest of T evenly spaced valid frames (the sampling some other feeders use).
import { RankscopeError } from '../errors';

export const NTU_FRAMES = 300;
export const NTU_JOINTS = 25;
export const NTU_PERSONS = 2;
export const NTU_CHANNELS = 3;
export const NTU_FRAME_SIZE = NTU_PERSONS * NTU_JOINTS * NTU_CHANNELS; // 150

export interface NtuOptions {
  /** Frames the model takes (its input's T). */
  frames: number;
  /** Centre-crop fraction of the valid frames (CTR-GCN test p_interval [0.95]). */
  crop?: number;
  /** 'linear' (CTR-GCN's interpolation, default) or 'uniform' (nearest evenly spaced frame). */
  resample?: 'linear' | 'uniform';
}

export function checkNtuOptions(o: NtuOptions): void {
  if (!(Number.isInteger(o.frames) && o.frames >= 1)) throw new RankscopeError('BAD_ARGUMENT', `NTU preset: frames must be an integer ≥ 1; got ${o.frames}.`);
  if (o.crop !== undefined && !(o.crop > 0 && o.crop <= 1)) throw new RankscopeError('BAD_ARGUMENT', `NTU preset: crop must be in (0, 1]; got ${o.crop}.`);
  if (o.resample !== undefined && o.resample !== 'linear' && o.resample !== 'uniform') {
    throw new RankscopeError('BAD_ARGUMENT', `NTU preset: resample must be linear or uniform; got ${o.resample}.`);
  }
}

/** Valid frames of one sample: frames whose 150 values do not sum to 0 (CTR-GCN's test). */
export function validFrameCount(x: Float32Array, sampleOffset: number, framesStored: number): number {
  let valid = 0;
  for (let t = 0; t < framesStored; t++) {
    let sum = 0;
    const base = sampleOffset + t * NTU_FRAME_SIZE;
    for (let j = 0; j < NTU_FRAME_SIZE; j++) sum += x[base + j];
    if (sum !== 0) valid++;
  }
  return valid;
}

/**
 * (count, framesStored, 150) → (count, 3, T, 25, 2). `framesStored` is 300 in the standard files.
 */
export function ntuToModel(x: Float32Array, count: number, framesStored: number, options: NtuOptions): Float32Array {
  const T = options.frames;
  const p = options.crop ?? 0.95;
  const out = new Float32Array(count * NTU_CHANNELS * T * NTU_JOINTS * NTU_PERSONS);
  const src = new Float64Array(T);
  const i0s = new Int32Array(T);
  const i1s = new Int32Array(T);
  for (let n = 0; n < count; n++) {
    const sampleOffset = n * framesStored * NTU_FRAME_SIZE;
    const valid = validFrameCount(x, sampleOffset, framesStored);
    if (valid === 0) continue; // an empty clip stays zeros
    const bias = Math.trunc(((1 - p) * valid) / 2);
    const first = bias;
    const length = valid - 2 * bias;
    // Source frame index per output frame, as torch's area_pixel_compute_source_index does.
    const scale = Math.fround(length / T);
    for (let t = 0; t < T; t++) {
      if (options.resample === 'uniform') {
        const s = Math.min(length - 1, Math.floor(((t + 0.5) * length) / T));
        src[t] = 0;
        i0s[t] = s;
        i1s[t] = s;
        continue;
      }
      const s = Math.max(0, Math.fround(Math.fround(scale * (t + 0.5)) - 0.5));
      const i0 = Math.trunc(s);
      i0s[t] = i0;
      i1s[t] = i0 < length - 1 ? i0 + 1 : i0;
      src[t] = Math.fround(s - i0);
    }
    const outBase = n * NTU_CHANNELS * T * NTU_JOINTS * NTU_PERSONS;
    for (let t = 0; t < T; t++) {
      const l1 = src[t];
      const l0 = 1 - l1;
      const a = sampleOffset + (first + i0s[t]) * NTU_FRAME_SIZE;
      const b = sampleOffset + (first + i1s[t]) * NTU_FRAME_SIZE;
      for (let m = 0; m < NTU_PERSONS; m++) {
        for (let v = 0; v < NTU_JOINTS; v++) {
          for (let c = 0; c < NTU_CHANNELS; c++) {
            const j = m * NTU_JOINTS * NTU_CHANNELS + v * NTU_CHANNELS + c;
            // out[n, c, t, v, m]
            out[outBase + ((c * T + t) * NTU_JOINTS + v) * NTU_PERSONS + m] = l0 * x[a + j] + l1 * x[b + j];
          }
        }
      }
    }
  }
  return out;
}
