// Names for the files Rankscope writes next to a model. One rule for every writer (compress,
// restore, fine-tune; extension and CLI): `<stem>.<suffix>.onnx`, then `<stem>.<suffix>-2.onnx`, …,
// the first that does not exist, so a new result never replaces an earlier one.
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** `dir/model.<suffix>.onnx`, then `model.<suffix>-2.onnx`, … — the first free name next to `modelPath`. */
export function nextFreeOutputPath(modelPath: string, suffix: string): string {
  const dir = dirname(resolve(modelPath));
  const escaped = suffix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // model.finetuned.onnx → model.finetuned-2.onnx, not model.finetuned.finetuned.onnx.
  const stem = basename(modelPath).replace(/\.onnx$/i, '').replace(new RegExp(`\\.${escaped}(-\\d+)?$`), '');
  for (let i = 1; ; i++) {
    const candidate = join(dir, `${stem}.${suffix}${i === 1 ? '' : `-${i}`}.onnx`);
    if (!existsSync(candidate)) return candidate;
  }
}
