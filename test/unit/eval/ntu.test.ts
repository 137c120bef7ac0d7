// The NTU preset against CTR-GCN's own test-time feeder code (valid_crop_resize, run in
// PyTorch in the test setup) on a synthetic file in the exact (N, 300, 150) layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNtuFixture, NTU_VALID } from './fixtures';
import { pythonHas } from '../../helpers/python';
import { OrtRunner } from '../../../src/core/eval/runner';
import { loadDataset } from '../../../src/core/eval/dataset';
import { evaluate } from '../../../src/core/eval/evaluate';
import { readNpy } from '../../../src/core/eval/npy';
import { openNpz } from '../../../src/core/eval/npz';
import { RankscopeError } from '../../../src/core/errors';

const hasTorch = pythonHas('torch', 'onnx');
let dir = '';
let runner: OrtRunner;

before(() => {
  if (!hasTorch) return;
  dir = mkdtempSync(join(tmpdir(), 'rankscope-ntu-'));
  writeNtuFixture(dir);
  runner = OrtRunner.create({ intraOpThreads: 1 });
});
after(async () => {
  await runner?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('(N, 300, 150) → (N, 3, T, 25, 2) equals CTR-GCN valid_crop_resize (torch)', { skip: !hasTorch && 'needs torch' }, async () => {
  const session = await runner.open(join(dir, 'ntu.onnx'));
  const data = await loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu' }, session.inputs);
  assert.deepEqual(data.inputKeys, { x: 'x_test' });
  assert.equal(data.labelKey, 'y_test');
  assert.equal(data.ntu?.frames, 64); // taken from the model's input shape
  const expected = (await (await readNpy(join(dir, 'ntu_ref.npy'))).readAll()) as Float32Array;
  const per = 3 * 64 * 25 * 2;
  // Batches of 3 cut through the samples: the result must not depend on batching.
  for await (const batch of data.batches(3)) {
    const got = batch.feeds.x.data as Float32Array;
    assert.deepEqual(batch.feeds.x.dims, [batch.count, 3, 64, 25, 2]);
    for (let i = 0; i < got.length; i++) {
      const want = expected[batch.start * per + i];
      assert.ok(Math.abs(got[i] - want) <= 1e-5 * (1 + Math.abs(want)), `sample ${batch.start + Math.floor(i / per)} (valid ${NTU_VALID[batch.start + Math.floor(i / per)]}) element ${i % per}: ${got[i]} vs ${want}`);
    }
  }
  // One-hot labels became class indices; the model's logits match numpy's on the reference input.
  const logits = (await (await readNpy(join(dir, 'ntu_logits.npy'))).readAll()) as Float64Array;
  const r = await evaluate(session, data, { batchSize: 4, keepOutputs: true });
  for (let i = 0; i < logits.length; i++) assert.ok(Math.abs(r.outputs![i] - logits[i]) < 1e-3, `logit ${i}`);
  assert.equal(r.metrics.samples, NTU_VALID.length);
  await data.close();
});

test('uniform resampling picks evenly spaced valid frames', { skip: !hasTorch && 'needs torch' }, async () => {
  const session = await runner.open(join(dir, 'ntu.onnx'));
  const data = await loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu', ntu: { resample: 'uniform', crop: 1 } }, session.inputs);
  const z = await openNpz(join(dir, 'ntu.npz'));
  const raw = (await (await z.array('x_test')).readRows(1, 1)) as Float32Array;
  // Sample 1 stores 120 frames; frame 3 sums to 0, so 119 count as valid (CTR-GCN's rule).
  const counted = 119;
  const x = (await data.batch(1, 1)).feeds.x.data as Float32Array;
  for (let t = 0; t < 64; t++) {
    const frame = Math.floor(((t + 0.5) * counted) / 64);
    for (const [c, v, m] of [[0, 0, 0], [2, 24, 1], [1, 7, 0]]) {
      assert.equal(x[((c * 64 + t) * 25 + v) * 2 + m], raw[frame * 150 + m * 75 + v * 3 + c], `t=${t} c=${c} v=${v} m=${m}`);
    }
  }
  await z.close();
  await data.close();
});

test('NTU preset: wrong array shape, symbolic T without frames, frames that contradict the model', { skip: !hasTorch && 'needs torch' }, async () => {
  const session = await runner.open(join(dir, 'ntu.onnx'));
  await assert.rejects(loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu', inputs: { x: 'y_test' } }, session.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && e.message.includes('ntu.npz:y_test has shape (8, 60)') && /expects \(N, 300, 150\) float32/.test(e.message));
  const symbolic = [{ ...session.inputs[0], shape: ['N', 3, 'T', 25, 2] }];
  await assert.rejects(loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu' }, symbolic), (e: RankscopeError) =>
    e.code === 'BAD_ARGUMENT' && /symbolic T/.test(e.message) && /frames/.test(e.hint ?? ''));
  const ok = await loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu', ntu: { frames: 32 } }, symbolic);
  assert.deepEqual((await ok.batch(0, 2)).feeds.x.dims, [2, 3, 32, 25, 2]);
  await ok.close();
  await assert.rejects(loadDataset({ data: join(dir, 'ntu.npz'), preset: 'ntu', ntu: { frames: 32 } }, session.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && /T = 64/.test(e.message));
});
