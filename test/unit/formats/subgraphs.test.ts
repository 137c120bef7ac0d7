// Weights inside If/Loop/Scan subgraphs (torch.onnx.export of scripted control flow, nested, as
// Constant nodes in the branches, as a body's own initializer), float16 weights behind a Cast and
// a weight reshaped on its way to a Gemm: listed with PyTorch's names, matrices and biases,
// counted like Python onnx counts them, and compressed so that ONNX Runtime gives PyTorch's
// outputs at full rank and PyTorch-with-numpy's-rank-K-weights at rank K.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import { layerMatrices } from '../../../src/core/model/matrix';
import { compressToFile, planModel, recomposeLayers, type CompressRequest } from '../../../src/core/compress';
import { pythonHas, runPython } from '../../helpers/python';
import { tempDir } from './fixtures';

const hasTorch = pythonHas('torch', 'onnx');
const skip = !hasTorch && 'no torch';
const K = 3;
interface Run { inputs: { dtype: 'float32' | 'int64'; shape: number[]; data: number[] }[]; full: number[]; lowrank: number[] }
interface Expected { layers: Record<string, { weight: string; shape: [number, number]; bias: number }>; runs: Run[]; params: number }
const MODELS = ['if', 'if_constants', 'loop', 'loop_initializer', 'nested', 'scan', 'half', 'reshape'];
/** Models whose weights are float16 (factors too): ONNX Runtime's result is within float16 rounding. */
const HALF = new Set(['half']);

let dir: string;
let expected: Record<string, Expected>;

before(() => {
  if (!hasTorch) return;
  dir = tempDir('rankscope-subgraphs-');
  // Run from its file: torch.jit.script reads the modules' source.
  runPython('import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")', [join(__dirname, 'subgraph_export.py'), dir, String(K)]);
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

/** Feeds in the order of the session's inputs. */
function feedsOf(session: ort.InferenceSession, run: Run): Record<string, ort.Tensor> {
  return Object.fromEntries(session.inputNames.map((name, i) => {
    const { dtype, shape, data } = run.inputs[i];
    return [name, dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(data.map(BigInt)), shape) : new ort.Tensor('float32', Float32Array.from(data), shape)];
  }));
}

async function outputs(path: string, run: Run): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const result = await session.run(feedsOf(session, run));
    return result[session.outputNames.includes('y') ? 'y' : session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

/** max |y − ref| / max |ref|. */
function deviation(y: Float32Array, ref: number[]): number {
  assert.equal(y.length, ref.length);
  let scale = 0;
  let diff = 0;
  ref.forEach((r, i) => {
    scale = Math.max(scale, Math.abs(r));
    diff = Math.max(diff, Math.abs(y[i] - r));
  });
  return diff / scale;
}

async function compress(name: string, request: CompressRequest, suffix: string): Promise<{ model: OnnxModel; out: string }> {
  const model = await openOnnx(join(dir, `${name}.onnx`));
  const plan = await planModel(model, request);
  assert.deepEqual(plan.layers.filter((l) => l.skipped).map((l) => `${l.layer}: ${l.reason}`), [], `${name}: nothing skipped`);
  const out = join(dir, `${name}.${suffix}.onnx`);
  await compressToFile(model, plan, out);
  return { model, out };
}

test('layers inside subgraphs, behind a Cast or a Reshape: PyTorch\'s module names, [out, in] weights bit for bit, biases; Python onnx\'s parameter count', { skip }, async () => {
  for (const name of MODELS) {
    const model = await openOnnx(join(dir, `${name}.onnx`));
    const want = expected[name];
    assert.deepEqual(model.layers.map((l) => l.name), Object.keys(want.layers), `${name}: layers`);
    for (const layer of model.layers) {
      const w = want.layers[layer.name];
      assert.deepEqual(layer.shape, w.shape, `${name}/${layer.name} shape`);
      assert.equal(layer.biasParams, w.bias, `${name}/${layer.name} bias`);
      const [m] = layerMatrices(model, layer);
      assert.equal(Buffer.from(m.data.buffer).toString('hex'), w.weight, `${name}/${layer.name} matrix`);
    }
    assert.equal(model.summary.totalParams, want.params, `${name}: parameters`);
  }
  const half = await openOnnx(join(dir, 'half.onnx'));
  assert.deepEqual(half.layers.map((l) => [l.dtype, l.bias, l.via]), [
    ['float16', 'enc.0.bias', ['/enc/enc.0/Cast']], ['float16', 'enc.2.bias', ['/enc/enc.2/Cast']], ['float16', 'out.bias', ['/out/Cast']],
  ]);
  const reshaped = (await openOnnx(join(dir, 'reshape.onnx'))).layers[0];
  assert.deepEqual([reshaped.tensorShape, reshaped.shape, reshaped.via], [[24, 16, 1], [24, 16], ['/Reshape']]);
});

test('full rank inside subgraphs: every layer rewritten where it is used, ONNX Runtime gives PyTorch\'s outputs', { skip }, async () => {
  for (const name of MODELS) {
    const { model, out } = await compress(name, { rankRatio: 1, force: true }, 'full');
    const compressed = await openOnnx(out);
    assert.deepEqual(compressed.layers.filter((l) => l.compressed).map((l) => l.name), Object.keys(expected[name].layers), `${name}: every layer factorized`);
    for (const l of model.layers) assert.equal(compressed.tensor(l.weight), undefined, `${name}/${l.name}: the dense weight is gone`);
    for (const run of expected[name].runs) {
      const before = deviation(await outputs(join(dir, `${name}.onnx`), run), run.full);
      const d = deviation(await outputs(out, run), run.full);
      assert.ok(before < 1e-5, `${name}: the original runs as PyTorch (${before})`);
      assert.ok(d < (HALF.has(name) ? 1e-2 : 1e-5), `${name}: relative deviation ${d}`);
    }
  }
});

test(`rank ${K} inside subgraphs: ONNX Runtime gives PyTorch's output with numpy's rank-${K} truncated weights; totals as planned`, { skip }, async () => {
  for (const name of MODELS) {
    const model = await openOnnx(join(dir, `${name}.onnx`));
    const plan = await planModel(model, { rank: K });
    const { out } = await compress(name, { rank: K }, `k${K}`);
    const compressed = await openOnnx(out);
    assert.equal(compressed.summary.totalParams, plan.totals.modelParamsAfter, `${name}: parameters after`);
    assert.ok(compressed.summary.totalParams < model.summary.totalParams, name);
    for (const run of expected[name].runs) {
      const d = deviation(await outputs(out, run), run.lowrank);
      const drift = deviation(await outputs(out, run), run.full);
      assert.ok(d < (HALF.has(name) ? 1e-2 : 1e-5), `${name}: deviation from the rank-${K} reference ${d}`);
      assert.ok(drift > 10 * d, `${name}: rank ${K} really changed the output (${drift} vs ${d})`);
    }
  }
});

test('restore inside subgraphs puts the dense weights back: the original outputs', { skip }, async () => {
  for (const name of ['if', 'if_constants', 'loop_initializer', 'nested', 'scan', 'reshape']) {
    const packed = join(dir, `${name}.k${K}.onnx`);
    const model = await openOnnx(packed);
    const restored = join(dir, `${name}.restored.onnx`);
    await recomposeLayers(model, model.layers.filter((l) => l.compressed).map((l) => l.name), restored);
    const dense = await openOnnx(restored);
    assert.ok(dense.layers.every((l) => !l.compressed && l.factorizable), name);
    for (const run of expected[name].runs) {
      // A·B at rank K is what comes back: PyTorch's rank-K output.
      const d = deviation(await outputs(restored, run), run.lowrank);
      assert.ok(d < 1e-5, `${name}: restored deviation ${d}`);
    }
  }
});

test('a subgraph\'s external-data initializer is written inline when the output goes to another folder', { skip }, async () => {
  const src = join(dir, 'ext-in');
  runPython(`import onnx, sys, os
os.makedirs(sys.argv[2], exist_ok=True)
onnx.save(onnx.load(sys.argv[1]), os.path.join(sys.argv[2], 'li.onnx'), save_as_external_data=True, all_tensors_to_one_file=True, location='li.bin', size_threshold=0)`,
  [join(dir, 'loop_initializer.onnx'), src]);
  const model = await openOnnx(join(src, 'li.onnx'));
  const body = model.site('cell.weight')!;
  assert.equal(body.tensor!.dataLocation, 1, 'the body initializer is external');
  assert.equal(body.scope.where, "Loop '/Loop' body");
  const out = join(dir, 'li.k3.onnx');
  await compressToFile(model, await planModel(model, { rank: K, layers: ['head'] }), out);
  const inline = await compress('loop_initializer', { rank: K, layers: ['head'] }, 'head-k3');
  const run = expected.loop_initializer.runs[0];
  const want = await outputs(inline.out, run);
  assert.ok(deviation(await outputs(out, run), Array.from(want)) < 1e-6);
});
