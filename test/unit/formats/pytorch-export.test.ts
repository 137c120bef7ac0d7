// A real torch.onnx.export: module-path names, [out, in] matrices equal to PyTorch's own
// weights, and the round-tripped model reproducing PyTorch's output in ONNX Runtime.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openOnnx, writeOnnxAtomic, type OnnxModel } from '../../../src/core/formats/onnx';
import { layerMatrices } from '../../../src/core/model/matrix';
import { pythonHas, runPython } from '../../helpers/python';
import { runModel, tempDir } from './fixtures';

const hasTorch = pythonHas('torch', 'onnx');
let dir: string;
let model: OnnxModel;
let ref: { matrices: Record<string, string[]>; ids: number[]; logits: number[] };

before(async () => {
  if (!hasTorch) return;
  dir = tempDir('rankscope-torch-');
  runPython(readFileSync(join(__dirname, 'torch_export.py'), 'utf8'), [dir]);
  ref = JSON.parse(readFileSync(join(dir, 'torch.json'), 'utf8'));
  model = await openOnnx(join(dir, 'model.onnx'));
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

test('layers of a PyTorch export carry module paths', { skip: !hasTorch && 'no torch' }, () => {
  assert.deepEqual(model.layers.map((l) => `${l.name} ${l.op} ${l.shape.join('x')}`), [
    'embed Gather 50x32',
    'conv Conv 32x24',
    'encoder.layers.0.self_attn.in_proj MatMul 96x32',
    'encoder.layers.0.self_attn.out_proj Gemm 32x32',
    'encoder.layers.0.linear1 MatMul 64x32',
    'encoder.layers.0.linear2 MatMul 32x64',
    'encoder.layers.1.self_attn.in_proj MatMul 96x32',
    'encoder.layers.1.self_attn.out_proj Gemm 32x32',
    'encoder.layers.1.linear1 MatMul 64x32',
    'encoder.layers.1.linear2 MatMul 32x64',
    'head Gemm 10x32',
  ]);
  assert.ok(model.layers.find((l) => l.name === 'encoder.layers.0.linear1')!.weight.startsWith('onnx::MatMul_'));
});

test('layerMatrices equals PyTorch\'s weight [out, in] bit for bit', { skip: !hasTorch && 'no torch' }, () => {
  for (const [name, hexes] of Object.entries(ref.matrices)) {
    const layer = model.layers.find((l) => l.name === name);
    assert.ok(layer, name);
    const got = layerMatrices(model, layer);
    assert.equal(got.length, hexes.length, name);
    got.forEach((m, g) => assert.equal(Buffer.from(m.data.buffer).toString('hex'), hexes[g], `${name} group ${g}`));
  }
});

test('after our round trip ONNX Runtime reproduces PyTorch\'s output', { skip: !hasTorch && 'no torch' }, async () => {
  const out = join(dir, 'rt.onnx');
  await writeOnnxAtomic(out, model.proto);
  const ids = new ort.Tensor('int64', BigInt64Array.from(ref.ids.map(BigInt)), [2, 7]);
  const got = (await runModel(out, () => ({ ids }))).logits.data as Float32Array;
  assert.equal(got.length, ref.logits.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - ref.logits[i]) <= 1e-5 + 1e-4 * Math.abs(ref.logits[i]), `logit ${i}: ${v} vs ${ref.logits[i]}`));
});
