// The bundled sample models (media/samples): what Rankscope sees in them, and that ONNX Runtime,
// fed through EVAL's NTU preset, scores them exactly as PyTorch did when the training script
// exported them (each model's <name>.training.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { openOnnx } from '../../src/core/formats/onnx';
import { loadDataset } from '../../src/core/eval/dataset';
import { evaluate } from '../../src/core/eval/evaluate';
import { OrtRunner } from '../../src/core/eval/runner';

const DATA = 'media/samples/skeleton-actions.npz';
const CLASSES = JSON.parse(readFileSync('media/samples/skeleton-actions.classes.json', 'utf8')) as string[];

interface Training { parameters: number; test_top1: number; epochs: number; train_seconds: number }
const training = (name: string) => JSON.parse(readFileSync(`media/samples/${name}.training.json`, 'utf8')) as Training;

test('the skeleton Transformer: Hyperformer-like layers, 1-3 M parameters, NTU input', async () => {
  const path = 'media/samples/skeleton-transformer.onnx';
  assert.ok(statSync(path).size <= 15 * 1024 * 1024);
  const model = await openOnnx(path);
  const s = model.summary;
  assert.ok(s.totalParams >= 1e6 && s.totalParams <= 3e6, `${s.totalParams} parameters`);
  assert.ok(s.opsets.some((o) => (o.domain === '' || o.domain === 'ai.onnx') && o.version >= 13));
  assert.deepEqual(s.inputs.map((i) => [i.name, i.shape]), [['skeleton', ['batch', 3, 64, 25, 2]]]);
  assert.deepEqual(s.outputs.map((o) => [o.name, o.shape]), [['logits', ['batch', CLASSES.length]]]);
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  // Every block: q/k/v/output projections as 1×1 convs, a pointwise feed-forward, a strided temporal conv.
  for (let b = 0; b < 4; b++) {
    for (const p of ['q', 'k', 'v', 'proj']) {
      const l = byName.get(`blocks.${b}.attn.${p}`);
      assert.ok(l, `blocks.${b}.attn.${p} missing; layers: ${[...byName.keys()].join(', ')}`);
      assert.equal(l.op, 'Conv');
      assert.deepEqual(l.kernel, [1, 1]);
      assert.ok(l.factorizable);
    }
    // BN folded into it at export gives the weight an opaque name, so its layer name comes from
    // the node path `/blocks/blocks.0/tconv/Conv`.
    const tconv = byName.get(`blocks.${b}.tconv`);
    assert.deepEqual(tconv?.kernel, [5, 1]);
  }
  assert.equal(byName.get('embed')?.op, 'Conv');
  assert.equal(byName.get('head.2')?.op, 'Gemm');
});

test('the MLP variant: large square linear layers', async () => {
  const model = await openOnnx('media/samples/skeleton-mlp.onnx');
  const big = model.layers.filter((l) => l.op === 'Gemm' && l.shape[0] >= 1024 && l.shape[1] >= 1024);
  assert.equal(big.length, 3);
  assert.ok(model.summary.factorizableParams / model.summary.totalParams > 0.99);
});

for (const name of ['skeleton-transformer', 'skeleton-mlp']) {
  test(`${name}: ONNX Runtime top-1 through the NTU preset equals the PyTorch figure at export`, async () => {
    const t = training(name);
    const runner = OrtRunner.create({ intraOpThreads: 1 });
    try {
      const session = await runner.open(`media/samples/${name}.onnx`);
      const dataset = await loadDataset({ data: DATA, preset: 'ntu', labels: 'y_test', inputs: { skeleton: 'x_test' } }, session.inputs);
      const r = await evaluate(session, dataset, { batchSize: 64 });
      await dataset.close();
      assert.equal(r.metrics.samples, 405);
      // Same preprocessing, float32 both sides: at most one of 405 predictions may flip on a near tie.
      assert.ok(Math.abs(r.metrics.top1! - t.test_top1) <= 1 / 405 + 1e-9, `ORT ${r.metrics.top1} vs PyTorch ${t.test_top1}`);
      // The sample is meant to be hard: well above chance, short of perfect.
      assert.ok(r.metrics.top1! > 0.85 && r.metrics.top1! < 0.99, `top-1 ${r.metrics.top1}`);
    } finally {
      await runner.dispose();
    }
  });
}
