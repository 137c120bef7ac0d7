// evaluate() on ONNX Runtime against numpy's forward pass: accuracy, fidelity, cancellation,
// and the messages for data that does not fit the model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeMlpFixture } from './fixtures';
import { OrtRunner, type OrtSession } from '../../../src/core/eval/runner';
import { loadDataset } from '../../../src/core/eval/dataset';
import { evaluate } from '../../../src/core/eval/evaluate';
import { compareLatency, measureLatency, summarize } from '../../../src/core/eval/latency';
import { RankscopeError } from '../../../src/core/errors';

let dir = '';
let runner: OrtRunner;
let original: OrtSession;
let perturbed: OrtSession;
let ref: { orig: [number, number]; pert: [number, number]; agreement: number; relativeError: number; meanKL: number };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-eval-'));
  writeMlpFixture(dir);
  ref = JSON.parse(readFileSync(join(dir, 'ref.json'), 'utf8'));
  runner = OrtRunner.create({ intraOpThreads: 1 });
  original = await runner.open(join(dir, 'mlp.onnx'));
  perturbed = await runner.open(readFileSync(join(dir, 'mlp_perturbed.onnx')), 'perturbed');
});
after(async () => {
  await runner?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('top-1 / top-5 equal numpy on integer and one-hot labels, any batch size', async () => {
  for (const [labels, batchSize] of [['y', 32], ['y_onehot', 7], ['y', 200]] as const) {
    const data = await loadDataset({ data: join(dir, 'data.npz'), inputs: { x: 'x' }, labels }, original.inputs);
    const r = await evaluate(original, data, { batchSize });
    assert.equal(r.metrics.samples, 200);
    assert.equal(r.metrics.classes, 10);
    assert.equal(r.metrics.top1, ref.orig[0], `${labels}/${batchSize}`);
    assert.equal(r.metrics.top5, ref.orig[1]);
    await data.close();
  }
  // Guard against a test that cannot fail: the two models and the labels really differ.
  assert.ok(ref.orig[0] > 0.3 && ref.orig[0] < 0.95 && ref.orig[1] > ref.orig[0]);
  assert.notEqual(ref.pert[0], ref.orig[0]);
});

test('fidelity to the original (agreement, relative error, mean KL) equals numpy', async () => {
  const data = await loadDataset({ data: join(dir, 'data.npz') }, original.inputs); // x and y found by convention
  assert.deepEqual(data.inputKeys, { x: 'x' });
  assert.equal(data.labelKey, 'y');
  const base = await evaluate(original, data, { batchSize: 64, keepOutputs: true });
  const r = await evaluate(perturbed, data, { batchSize: 50, reference: base.outputs });
  assert.equal(r.metrics.top1, ref.pert[0]);
  assert.equal(r.metrics.agreement, ref.agreement);
  assert.ok(ref.agreement < 1);
  assert.ok(Math.abs(r.metrics.relativeError! - ref.relativeError) < 1e-5 * ref.relativeError + 1e-7, `${r.metrics.relativeError} vs ${ref.relativeError}`);
  assert.ok(Math.abs(r.metrics.meanKL! - ref.meanKL) < 1e-4 * ref.meanKL + 1e-7, `${r.metrics.meanKL} vs ${ref.meanKL}`);
  const self = await evaluate(original, data, { batchSize: 64, reference: base.outputs });
  assert.equal(self.metrics.agreement, 1);
  assert.equal(self.metrics.relativeError, 0);
  assert.equal(self.metrics.meanKL, 0);
  await data.close();
});

test('float64 data feeds a float32 model; limit takes the first samples', async () => {
  const data = await loadDataset({ data: join(dir, 'data.npz'), inputs: { x: 'x64' }, labels: 'y', limit: 50 }, original.inputs);
  assert.equal(data.size, 50);
  const r = await evaluate(original, data, { batchSize: 16 });
  assert.equal(r.metrics.samples, 50);
  await data.close();
});

test('bad data gets a message naming the array, its shape and the expected shape', async () => {
  const npz = join(dir, 'data.npz');
  await assert.rejects(loadDataset({ data: npz, inputs: { x: 'xbad' } }, original.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && e.message.includes(`${npz}:xbad`) && e.message.includes('(200, 15)') && e.message.includes("'x' expects (?, 16)"));
  await assert.rejects(loadDataset({ data: npz, inputs: { x: 'x' }, labels: 'y_short' }, original.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && /y_short has 150 labels/.test(e.message) && /200 samples/.test(e.message));
  await assert.rejects(loadDataset({ data: npz, inputs: { x: 'y' } }, original.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && /:y has shape \(200,\)/.test(e.message));
  await assert.rejects(loadDataset({ data: npz, inputs: { x: 'nope' } }, original.inputs), (e: RankscopeError) =>
    e.code === 'NOT_FOUND' && /no array 'nope'/.test(e.message) && /xbad/.test(e.hint ?? ''));
  await assert.rejects(loadDataset({ data: npz, inputs: { input_ids: 'x' } }, original.inputs), (e: RankscopeError) =>
    e.code === 'BAD_ARGUMENT' && /no input 'input_ids'/.test(e.message));
  await assert.rejects(loadDataset({ data: npz, labels: 'y', preset: 'ntu' }, original.inputs), (e: RankscopeError) =>
    e.code === 'SHAPE_MISMATCH' && /NTU preset: model input 'x' has shape \(N, 16\)/.test(e.message));
  await assert.rejects(loadDataset({ data: join(dir, 'missing.npz') }, original.inputs), (e: RankscopeError) => e.code === 'NOT_FOUND');
  await assert.rejects(runner.open(join(dir, 'ref.json')), (e: RankscopeError) => e.code === 'RUNTIME' && e.message.includes('ref.json'));
});

test('cancelling mid-evaluation stops the runner thread and rejects with CANCELLED', async () => {
  const controller = new AbortController();
  const own = OrtRunner.create({ signal: controller.signal, intraOpThreads: 1 });
  const session = await own.open(join(dir, 'mlp.onnx'));
  const data = await loadDataset({ data: join(dir, 'data.npz'), inputs: { x: 'x' } }, session.inputs);
  let progressed = 0;
  const run = evaluate(session, data, { batchSize: 4, signal: controller.signal, onProgress: (d) => { progressed = d; if (d >= 8) controller.abort(); } });
  await assert.rejects(run, (e: RankscopeError) => e.code === 'CANCELLED');
  assert.ok(progressed >= 8 && progressed < 200, `stopped after ${progressed}`);
  await assert.rejects(session.run({}), (e: RankscopeError) => e.code === 'CANCELLED');
  await data.close();
  // An already aborted signal refuses to start.
  assert.throws(() => OrtRunner.create({ signal: controller.signal }), (e: RankscopeError) => e.code === 'CANCELLED');
});

test('cuda is refused with a clear message where this install lacks it', async () => {
  const cuda = OrtRunner.create({ ep: 'cuda' });
  try {
    await cuda.open(join(dir, 'mlp.onnx')).then(
      async (s) => { await s.close(); }, // a CUDA-enabled install: nothing to check
      (e: RankscopeError) => {
        assert.equal(e.code, 'RUNTIME');
        assert.match(e.message, /CUDA execution provider is not available/);
        assert.match(e.hint ?? '', /--ep cpu/);
      });
  } finally {
    await cuda.dispose();
  }
  assert.throws(() => OrtRunner.create({ ep: 'tpu' as never }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
});

test('latency: median and p90 of per-batch times; same-process comparison', async () => {
  const s = summarize([5, 1, 3, 2, 4, 10, 6, 7, 8, 9], 8);
  assert.equal(s.medianMs, 5.5);
  assert.equal(s.p90Ms, 9);
  assert.equal(s.throughput, (8 / 5.5) * 1000);
  const data = await loadDataset({ data: join(dir, 'data.npz'), inputs: { x: 'x' } }, original.inputs);
  const batch = await data.batch(0, 32);
  const one = await measureLatency(original, batch.feeds, { warmup: 1, runs: 5 });
  assert.equal(one.runs, 5);
  assert.ok(one.medianMs > 0 && one.p90Ms >= one.medianMs);
  const [a, b] = await compareLatency([original, perturbed], batch.feeds, { warmup: 1, runs: 7 });
  assert.equal(a.runs, 7);
  assert.equal(b.runs, 7);
  // One run of each in turn (the results table's interleaving): every run counted once.
  const turns = await compareLatency([original, perturbed], batch.feeds, { warmup: 0, runs: 6, rounds: 6 });
  assert.deepEqual(turns.map((t) => t.runs), [6, 6]);
  await assert.rejects(measureLatency(original, batch.feeds, { runs: 0 }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
  await data.close();
});
