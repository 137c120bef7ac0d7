// Format-agnostic layer rules: the module-path name a user recognises, and whether a matrix
// can be factorized at all.
import { FACTORIZABLE_DTYPES, type DType } from './types';

/** Initializer names that say nothing about the module (PyTorch exports, numbered values). */
export function isOpaqueName(name: string): boolean {
  return name.includes('::') || /^\d+$/.test(name) || /^(onnx_|val_|_v_|constant)/i.test(name) || name === '';
}

/**
 * Module path of a weight: `encoder.layers.0.fc1.weight` -> `encoder.layers.0.fc1`; an opaque
 * initializer (`onnx::MatMul_123`) takes its bias's name, else the node's path
 * (`/encoder/layers.0/self_attn/q_proj/MatMul` -> `encoder.layers.0.self_attn.q_proj`,
 * `/blocks/blocks.0/tconv/Conv` -> `blocks.0.tconv`).
 */
export function modulePath(weightName: string, nodeName: string, biasName?: string): string {
  if (!isOpaqueName(weightName) && /\.(weight|W|kernel)$/.test(weightName)) {
    return weightName.replace(/\.(weight|W|kernel)$/, '');
  }
  // The bias often keeps the parameter's name when the weight lost it
  // (nn.MultiheadAttention: `…self_attn.in_proj_bias` -> `…self_attn.in_proj`).
  if (biasName && !isOpaqueName(biasName) && /[._]bias$/.test(biasName) && biasName.includes('.')) {
    return biasName.replace(/[._]bias$/, '');
  }
  // A scoped node name: `/module/…/Op`. A bare `/Gemm` is an op of the root module: no path in it.
  const parts = nodeName.split('/').filter(Boolean);
  if (parts.length > 1) {
    parts.pop(); // the op's own name (`MatMul`, `Gemm_3`)
    // A called container repeats its name in its children's scopes
    // (`/blocks/blocks.0/tconv/Conv`): keep only the longer, dotted component.
    const kept = parts.filter((p, i) => !parts[i + 1]?.startsWith(`${p}.`));
    const path = kept.join('.');
    if (path) return path;
  }
  if (!isOpaqueName(weightName)) return weightName;
  return parts.join('.') || weightName;
}

/**
 * Why a matrix (or each of `groups` per-group matrices) of shape [rows, cols] cannot be
 * factorized, or undefined when it can. A rank-k factorization stores k·(m+n) numbers, so it
 * saves something at some k >= 1 only when m + n < m·n.
 */
export function notFactorizableReason(dtype: DType, rows: number, cols: number, groups = 1): string | undefined {
  if (!FACTORIZABLE_DTYPES.has(dtype)) {
    return /int|uint|bool/.test(dtype)
      ? `integer dtype ${dtype} (quantized or integer weights are listed, not compressed)`
      : `dtype ${dtype} is not supported for factorization`;
  }
  const m = rows / groups;
  if (m + cols >= m * cols) {
    return `too small to save anything at any rank (${groups > 1 ? `${groups} groups of ` : ''}${m}×${cols})`;
  }
  return undefined;
}
