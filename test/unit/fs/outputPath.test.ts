// nextFreeOutputPath: the one naming rule for results next to a model, for ONNX results and for
// the fine-tuned state dicts of PyTorch checkpoints (their own extension).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextFreeOutputPath } from '../../../src/core/outputPath';

test('the next free <stem>.<suffix><ext>, then -2, -3; a result given again as the model does not stack suffixes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-outpath-'));
  try {
    const onnx = join(dir, 'model.onnx');
    assert.equal(nextFreeOutputPath(onnx, 'finetuned'), join(dir, 'model.finetuned.onnx'));
    const pt = join(dir, 'model.pt');
    assert.equal(nextFreeOutputPath(pt, 'finetuned', '.pt'), join(dir, 'model.finetuned.pt'));
    writeFileSync(join(dir, 'model.finetuned.pt'), '');
    assert.equal(nextFreeOutputPath(pt, 'finetuned', '.pt'), join(dir, 'model.finetuned-2.pt'));
    assert.equal(nextFreeOutputPath(join(dir, 'model.finetuned.pt'), 'finetuned', '.pt'), join(dir, 'model.finetuned-2.pt'));
    assert.equal(nextFreeOutputPath(join(dir, 'model.safetensors'), 'finetuned', '.safetensors'), join(dir, 'model.finetuned.safetensors'));
    assert.equal(nextFreeOutputPath(pt, 'finetuned'), join(dir, 'model.finetuned.onnx'), 'the ONNX default is unchanged');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
