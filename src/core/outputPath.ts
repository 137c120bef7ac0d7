// Names for the files Rankscope writes next to a model. One rule for every writer (compress,
// restore, fine-tune; extension and CLI): `<stem>.<suffix>.onnx`, then `<stem>.<suffix>-2.onnx`, …,
// the first that does not exist, so a new result never replaces an earlier one. Results that are
// not ONNX (a fine-tuned PyTorch state dict) give their own extension: `<stem>.<suffix>.pt`.
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** The endings of the model files Rankscope opens, removed to get a result's stem. */
const MODEL_EXTENSIONS = /\.(onnx|pt|pth|bin|safetensors)$/i;

/** `dir/model.<suffix><ext>`, then `model.<suffix>-2<ext>`, … — the first free name next to `modelPath`. */
export function nextFreeOutputPath(modelPath: string, suffix: string, ext = '.onnx'): string {
  const dir = dirname(resolve(modelPath));
  const escaped = suffix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // model.finetuned.onnx → model.finetuned-2.onnx, not model.finetuned.finetuned.onnx.
  const stem = basename(modelPath).replace(MODEL_EXTENSIONS, '').replace(new RegExp(`\\.${escaped}(-\\d+)?$`), '');
  for (let i = 1; ; i++) {
    const candidate = join(dir, `${stem}.${suffix}${i === 1 ? '' : `-${i}`}${ext}`);
    if (!existsSync(candidate)) return candidate;
  }
}
