// `rankscope spectrum` as a user runs it (a child process on a real ONNX file), checked against scipy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';
import { tempDir } from './reference';

const dir = tempDir();
const model = join(dir, 'm.onnx');
// One MatMul x·W with W [64, 40]: the layer's matrix is Wᵀ [40, 64]; its σ are W's.
const reference: number[] = JSON.parse(runPython(`
import sys, json, numpy as np, onnx, scipy.linalg as sl
from onnx import helper as h, TensorProto as T, numpy_helper as nh
w = np.random.default_rng(3).standard_normal((64, 40)).astype(np.float32)
g = h.make_graph([h.make_node('MatMul', ['x', 'fc.weight'], ['y'], name='/fc/MatMul')], 'g',
  [h.make_tensor_value_info('x', T.FLOAT, [1, 64])], [h.make_tensor_value_info('y', T.FLOAT, [1, 40])], [nh.from_array(w, 'fc.weight')])
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])
print(json.dumps(sl.svdvals(w.astype(np.float64)).tolist()))
`, [model]));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'spectrum', ...args], {
    env: { ...process.env, RANKSCOPE_CACHE_DIR: join(dir, 'cache') },
  });
  return { status: r.status, out: r.stdout.toString(), err: r.stderr.toString() };
}

test('spectrum --json prints { layer, shape, singularValues } matching scipy', () => {
  const r = cli(model, '--layer', 'fc', '--json');
  assert.equal(r.status, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.layer, 'fc');
  assert.deepEqual(j.shape, [40, 64]);
  assert.equal(j.singularValues.length, 40);
  j.singularValues.forEach((s: number, i: number) => assert.ok(Math.abs(s - reference[i]) <= 1e-5 * reference[0], `σ_${i}`));
  assert.equal(j.metrics.spectral, j.singularValues[0]);
});

test('spectrum --csv and the table list the values largest first', () => {
  const csv = cli(model, '--layer', 'fc', '--csv');
  assert.equal(csv.status, 0, csv.err);
  const lines = csv.out.trim().split('\n');
  assert.equal(lines[0], 'index,singular_value');
  assert.equal(lines.length, 41);
  const values = lines.slice(1).map((l) => Number(l.split(',')[1]));
  assert.deepEqual(values, [...values].sort((a, b) => b - a));
  const table = cli(model, '--layer', 'fc');
  assert.equal(table.status, 0, table.err);
  assert.match(table.out, /fc {2}\[40 × 64\]/);
  assert.match(table.out, /rank for 90\/95\/99 % energy/);
});

test('spectrum: unknown layer and missing --layer exit 2 with one clear line', () => {
  const r = cli(model, '--layer', 'nope');
  assert.equal(r.status, 2);
  assert.match(r.err, /No layer named 'nope'/);
  const m = cli(model);
  assert.equal(m.status, 2);
  assert.match(m.err, /Missing --layer/);
});

test('inspect --spectra adds each layer\'s metrics to the JSON and the table', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'inspect', model, '--spectra', ...args], {
    env: { ...process.env, RANKSCOPE_CACHE_DIR: join(dir, 'cache') },
  });
  const r = run('--json');
  assert.equal(r.status, 0, r.stderr.toString());
  const layer = JSON.parse(r.stdout.toString()).layers.find((l: { name: string }) => l.name === 'fc');
  const energy = reference.map((s) => s * s);
  const total = energy.reduce((a, b) => a + b, 0);
  const rankFor = (q: number) => { let kept = 0; return energy.findIndex((e) => (kept += e) >= q * total * (1 - 1e-12)) + 1; };
  assert.deepEqual(layer.spectrum.energyRank, { '0.9': rankFor(0.9), '0.95': rankFor(0.95), '0.99': rankFor(0.99) });
  assert.ok(Math.abs(layer.spectrum.stableRank - total / energy[0]) < 1e-6 * layer.spectrum.stableRank);
  assert.equal(layer.spectrum.alpha, undefined); // 40 eigenvalues: below 50
  assert.match(layer.spectrum.alphaReason, /only 40 eigenvalues/);
  const table = run();
  assert.equal(table.status, 0);
  assert.match(table.stdout.toString(), /r90 +r95 +r99 +stable +eff\.rank +alpha/);
});

test('a constant 24×512 weight (Inception-v1 inception_4b/5x5_reduce-like) returns: spectrum, inspect --spectra, compress --dry-run', () => {
  // Issue 12 item 3: the solver never returned on this matrix; each command now has a time bound.
  const constant = join(dir, 'constant.onnx');
  runPython(`
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
w = np.full((24, 512, 1, 1), 0.02, dtype=np.float32)
g = h.make_graph([h.make_node('Conv', ['x', 'reduce.weight'], ['y'], name='/reduce/Conv')], 'g',
  [h.make_tensor_value_info('x', T.FLOAT, [1, 512, 4, 4])], [h.make_tensor_value_info('y', T.FLOAT, [1, 24, 4, 4])], [nh.from_array(w, 'reduce.weight')])
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])
`, [constant]);
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), ...args], {
    env: { ...process.env, RANKSCOPE_CACHE_DIR: join(dir, 'cache-constant') }, timeout: 60_000, killSignal: 'SIGKILL',
  });
  const spectrum = run('spectrum', constant, '--layer', 'reduce', '--json');
  assert.notEqual(spectrum.signal, 'SIGKILL', 'spectrum did not return within 60 s');
  assert.equal(spectrum.status, 0, spectrum.stderr.toString());
  const s: number[] = JSON.parse(spectrum.stdout.toString()).singularValues;
  // Rank 1: σ_1 = 0.02·√(24·512) (float32 0.02), the rest zero to rounding.
  const sigma1 = Math.fround(0.02) * Math.sqrt(24 * 512);
  assert.ok(Math.abs(s[0] - sigma1) <= 1e-12 * sigma1, `σ_1 ${s[0]} vs ${sigma1}`);
  assert.ok(s.slice(1).every((x) => x <= 1e-12 * sigma1), 'σ_2… are rounding noise');
  const inspect = run('inspect', constant, '--spectra', '--json');
  assert.notEqual(inspect.signal, 'SIGKILL', 'inspect --spectra did not return within 60 s');
  assert.equal(inspect.status, 0, inspect.stderr.toString());
  assert.equal(JSON.parse(inspect.stdout.toString()).layers[0].spectrum.energyRank['0.99'], 1);
  const compress = run('compress', constant, '-o', join(dir, 'constant.small.onnx'), '--energy', '0.99', '--dry-run');
  assert.notEqual(compress.signal, 'SIGKILL', 'compress --dry-run did not return within 60 s');
  assert.equal(compress.status, 0, compress.stderr.toString());
  assert.match(compress.stdout.toString(), /^reduce\s+24×512\s+1\s/m);
});
