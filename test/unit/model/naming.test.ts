// Module-path names and the factorizability rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOpaqueName, modulePath, notFactorizableReason } from '../../../src/core/model/naming';

test('module path from the weight name, or from the node path when the name is opaque', () => {
  assert.equal(modulePath('onnx::MatMul_123', '/encoder/layers.0/self_attn/q_proj/MatMul'), 'encoder.layers.0.self_attn.q_proj');
  assert.equal(modulePath('encoder.layers.0.fc1.weight', '/encoder/layers.0/fc1/Gemm'), 'encoder.layers.0.fc1');
  assert.equal(modulePath('onnx::MatMul_289', '/encoder/layers.0/self_attn/MatMul', 'encoder.layers.0.self_attn.in_proj_bias'), 'encoder.layers.0.self_attn.in_proj');
  assert.equal(modulePath('onnx::MatMul_290', '/encoder/layers.0/linear1/MatMul', 'encoder.layers.0.linear1.bias'), 'encoder.layers.0.linear1');
  assert.equal(modulePath('onnx::MatMul_7', '/fc/MatMul', 'onnx::Add_8'), 'fc');
  // A called nn.Sequential repeats its name in its children's scopes.
  assert.equal(modulePath('onnx::Conv_12', '/blocks/blocks.0/tconv/Conv'), 'blocks.0.tconv');
  assert.equal(modulePath('onnx::Conv_13', '/blocks/blocks.10/blocks.10.x/Conv'), 'blocks.10.x');
  assert.equal(modulePath('fc6_w_0', ''), 'fc6_w_0');
  assert.equal(modulePath('1', ''), '1');
  assert.equal(modulePath('onnx::Conv_5', 'Conv_3'), 'Conv_3');
  assert.ok(isOpaqueName('onnx::MatMul_1') && isOpaqueName('123') && !isOpaqueName('head.weight'));
});

test('factorizable only when some rank saves parameters: m + n < m·n (per group)', () => {
  assert.equal(notFactorizableReason('float32', 32, 16), undefined);
  assert.match(notFactorizableReason('float32', 2, 2)!, /too small/);
  assert.equal(notFactorizableReason('float32', 3, 2), undefined); // 5 < 6: rank 1 saves
  assert.match(notFactorizableReason('float32', 1, 4096)!, /too small/);
  assert.match(notFactorizableReason('float32', 8, 9, 8)!, /8 groups of 1×9/);
  assert.equal(notFactorizableReason('float16', 64, 64, 4), undefined);
  assert.match(notFactorizableReason('int8', 64, 64)!, /integer dtype int8/);
  assert.match(notFactorizableReason('float8e4m3fn', 64, 64)!, /not supported/);
});

test('a root-level op (`/Gemm`, no module scope) names the layer after a readable weight, else the op', () => {
  assert.equal(modulePath('w', '/Gemm'), 'w');
  assert.equal(modulePath('onnx::Gemm_12', '/Gemm_1'), 'Gemm_1');
  assert.equal(modulePath('onnx::Gemm_12', '/Gemm_1', 'proj.bias'), 'proj');
  assert.equal(modulePath('onnx::MatMul_3', '/enc/enc.0/MatMul', 'onnx::Add_4'), 'enc.0');
});
