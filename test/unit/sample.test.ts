// The bundled sample models (media/samples): what Rankscope sees in them (the Hyperformer-like
// Transformer's block layers, the CATFormer variant's dense layers), and that ONNX Runtime,
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

interface Training { parameters: number; test_top1: number; val_top1: number; epochs: number; frames: number; train_seconds: number }
const training = (name: string) => JSON.parse(readFileSync(`media/samples/${name}.training.json`, 'utf8')) as Training;

test('the skeleton Transformer: Hyperformer\'s block layers, no layer dominating, NTU input', async () => {
  const path = 'media/samples/skeleton-transformer.onnx';
  assert.ok(statSync(path).size <= 15 * 1024 * 1024);
  const model = await openOnnx(path);
  const s = model.summary;
  assert.ok(s.totalParams >= 1e5 && s.totalParams <= 3e6, `${s.totalParams} parameters`);
  assert.ok(s.opsets.some((o) => (o.domain === '' || o.domain === 'ai.onnx') && o.version >= 13));
  assert.deepEqual(s.inputs.map((i) => [i.name, i.shape]), [['skeleton', ['batch', 3, training('skeleton-transformer').frames, 25, 2]]]);
  assert.deepEqual(s.outputs.map((o) => [o.name, o.shape]), [['logits', ['batch', CLASSES.length]]]);
  const byName = new Map(model.layers.map((l) => [l.name, l]));
  const layer = (name: string) => {
    const l = byName.get(name);
    assert.ok(l, `${name} missing; layers: ${[...byName.keys()].join(', ')}`);
    assert.ok(l.factorizable, `${name} not factorizable: ${l.reason}`);
    return l;
  };
  const pointwise = (name: string, out: number) => {
    const l = layer(name);
    assert.equal(l.op, 'Conv');
    assert.deepEqual(l.kernel, [1, 1], name);
    assert.equal(l.shape[0], out, name);
  };
  const blocks = new Set(model.layers.map((l) => /^blocks\.(\d+)\./.exec(l.name)?.[1]).filter((b) => b !== undefined));
  assert.ok(blocks.size >= 6, `${blocks.size} blocks`);
  const width = layer('blocks.1.attention.attn.q').shape[0];
  for (const b of blocks) {
    // Joint attention: q, kv (2× wide) and the hyperedge projection as 1×1 convs; the output
    // projection grouped; the hop-distance embedding a gathered table.
    pointwise(`blocks.${b}.attention.attn.q`, width);
    pointwise(`blocks.${b}.attention.attn.kv`, 2 * width);
    pointwise(`blocks.${b}.attention.edge_proj`, width);
    assert.ok((layer(`blocks.${b}.attention.attn.proj`).groups ?? 1) > 1);
    assert.equal(layer(`blocks.${b}.attention.attn`).op, 'Gather');
    // Multi-scale temporal block: four 1×1 branches of width/4, two of them into kernel-5 convs.
    for (const branch of [0, 1, 2, 3]) pointwise(`blocks.${b}.temporal.branches.${branch}.0`, width / 4);
    for (const branch of [0, 1]) assert.deepEqual(layer(`blocks.${b}.temporal.branches.${branch}.3`).kernel, [5, 1]);
  }
  // Block residual 1×1 where the channels (block 0) or the stride change, and only there.
  const residuals = model.layers.filter((l) => l.name.endsWith('.residual.0')).map((l) => l.name);
  assert.ok(residuals.length === 3 && residuals[0] === 'blocks.0.residual.0', residuals.join(', '));
  // The point of this sample (issue 14): the parameters sit in the blocks, as in Hyperformer;
  // no one layer holds more than 10 % of the factorizable parameters, the classifier under 2 %.
  const classifier = layer('classifier');
  assert.equal(classifier.op, 'Gemm');
  assert.ok((classifier.params + classifier.biasParams) / s.totalParams < 0.02);
  const largest = Math.max(...model.layers.map((l) => l.params));
  assert.ok(largest / s.factorizableParams < 0.1, `largest layer ${largest} of ${s.factorizableParams}`);
});

test('the CATFormer variant: per-frame dense layers over joints × channels hold ≥ 90 % of the parameters', async () => {
  const path = 'media/samples/skeleton-catformer.onnx';
  assert.ok(statSync(path).size <= 15 * 1024 * 1024);
  const model = await openOnnx(path);
  const dense = model.layers.filter((l) => /^blocks\.\d+\.dense$/.test(l.name));
  assert.ok(dense.length >= 4, model.layers.map((l) => l.name).join(', '));
  for (const l of dense) {
    assert.ok(l.op === 'MatMul' || l.op === 'Gemm', `${l.name}: ${l.op}`);
    assert.equal(l.shape[0], l.shape[1]);
    assert.equal(l.shape[0] % 25, 0, `${l.name}: ${l.shape} is not joints × channels`);
  }
  const inDense = dense.reduce((n, l) => n + l.params + l.biasParams, 0);
  assert.ok(inDense / model.summary.totalParams >= 0.9, `${inDense} of ${model.summary.totalParams}`);
});

for (const name of ['skeleton-transformer', 'skeleton-catformer']) {
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
