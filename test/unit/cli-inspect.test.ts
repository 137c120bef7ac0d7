// `rankscope inspect` end to end: a real process, real files, the documented JSON and exit codes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildZoo, tempDir } from './formats/fixtures';

let dir: string;
let zoo: string;
before(() => {
  dir = tempDir('rankscope-inspect-');
  zoo = buildZoo(dir).path;
});
after(() => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../src/cli/main.ts'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('inspect --json emits the documented schema', () => {
  const r = cli('inspect', zoo, '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.schema, 'rankscope.inspect/1');
  for (const k of ['path', 'format', 'fileSize', 'irVersion', 'opsets', 'producer', 'inputs', 'outputs', 'layerCount', 'totalParams', 'factorizableParams', 'factorizableShare', 'metadata']) {
    assert.ok(k in j.model, `model.${k}`);
  }
  assert.equal(j.model.layerCount, 22);
  const fc1 = j.layers[0];
  assert.deepEqual(
    { name: fc1.name, op: fc1.op, shape: fc1.shape, params: fc1.params, dtype: fc1.dtype, factorizable: fc1.factorizable, bias: fc1.bias, biasParams: fc1.biasParams },
    { name: 'enc.layers.0.fc1', op: 'MatMul', shape: [32, 16], params: 512, dtype: 'float32', factorizable: true, bias: 'enc.layers.0.fc1.bias', biasParams: 32 },
  );
  const tiny = j.layers.find((l: { name: string }) => l.name === 'tiny');
  assert.equal(tiny.factorizable, false);
  assert.match(tiny.reason, /too small/);
  assert.equal(j.layers.find((l: { name: string }) => l.name === 'enc.fc2').compressed.rank, 4);
  // MACs from one run of the declared shapes: fc1 multiplies xa [2, 16] by its 16×32 matrix.
  assert.equal(fc1.macs, 2 * 16 * 32);
  assert.equal(j.model.macs, j.layers.reduce((a: number, l: { macs: number | null }) => a + (l.macs ?? 0), 0));
  const q = j.layers.find((l: { name: string }) => l.name === 'q');
  assert.equal(q.macs, null);
  assert.match(q.macsNote, /DequantizeLinear/);
});

test('inspect prints a table in module order with totals', () => {
  const r = cli('inspect', zoo);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  const first = lines.findIndex((l) => /^\s*1\s+enc\.layers\.0\.fc1\s+MatMul\s+32 × 16\s+float32\s+512\s+1\.02K\s+32\s+1\s+yes$/.test(l));
  assert.ok(first > 0, r.out);
  assert.match(lines[first + 9], /depthwise.*no: too small/);
  assert.match(lines.at(-1)!, /^83,732 MACs per sample .*counted at xa \[2, 16\].*from the declared input shape/);
  assert.match(lines.at(-2)!, /^22 layers \(18 factorizable\); 9,316 parameters in total, 8,696 \(93\.3 %\) in factorizable layers\.$/);
});

test('bad input: exit 2 and one line on stderr, stack only with --debug', () => {
  const bad = join(dir, 'notes.onnx');
  writeFileSync(bad, 'not a model');
  for (const args of [[bad], [join(dir, 'missing.onnx')], [], [zoo, '--bogus']]) {
    const r = cli('inspect', ...args);
    assert.equal(r.code, 2, `${args}: ${r.err}`);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, /^rankscope inspect: /);
    assert.equal(r.out, '');
  }
  const r = cli('inspect', bad, '--debug');
  assert.equal(r.code, 2);
  assert.match(r.err, /not an ONNX model[\s\S]*at openModelBytes/);
});
