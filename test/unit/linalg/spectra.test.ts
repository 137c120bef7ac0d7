// computeSpectra end to end on real ONNX files (written by Python's onnx, opened by our reader):
// worker-thread pool, streaming order, cancellation, cache hit / corrupt entry / size bound,
// grouped convs, NaN weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { computeSpectra, type LayerSpectrum } from '../../../src/core/linalg/spectra';
import { SpectrumCache } from '../../../src/core/linalg/cache';
import { singularValues } from '../../../src/core/linalg/singularValues';
import { openModel } from '../../../src/core/formats';
import { layerMatrices } from '../../../src/core/model/matrix';
import { RankscopeError } from '../../../src/core/errors';
import { runPython } from '../../helpers/python';
import { maxAbsDiff, tempDir } from './reference';

/** A chain of MatMuls of different sizes plus a grouped conv; `nan` poisons one weight. */
function writeModel(path: string, nan = false, scaleLast = 1): void {
  runPython(`
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(7)
dims = [48, 96, 160, 64, 200, 40]
nodes, inits, x = [], [], 'x'
for i in range(len(dims) - 1):
    w = (rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i])).astype(np.float32)
    if i == len(dims) - 2: w *= ${scaleLast}
    if ${nan ? 'True' : 'False'} and i == 2: w[5, 3] = np.nan
    inits.append(nh.from_array(w, f'onnx::MatMul_{i}'))
    nodes.append(h.make_node('MatMul', [x, f'onnx::MatMul_{i}'], [f'h{i}'], name=f'/blocks.{i}/fc/MatMul'))
    x = f'h{i}'
cw = rng.standard_normal((32, 4, 3, 3)).astype(np.float32)
inits.append(nh.from_array(cw, 'conv.weight'))
nodes.append(h.make_node('Conv', ['img', 'conv.weight'], ['y2'], name='/conv/Conv', group=4, pads=[1, 1, 1, 1]))
g = h.make_graph(nodes, 'g', [h.make_tensor_value_info('x', T.FLOAT, [1, 48]), h.make_tensor_value_info('img', T.FLOAT, [1, 16, 8, 8])],
                 [h.make_tensor_value_info(x, T.FLOAT, None), h.make_tensor_value_info('y2', T.FLOAT, None)], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])
`, [path]);
}

const dir = tempDir();
const modelPath = join(dir, 'chain.onnx');
writeModel(modelPath);

test('spectra of every layer, largest first, streamed in order, equal to the direct computation', async () => {
  const model = await openModel(modelPath);
  const streamed: string[] = [];
  const results = await computeSpectra(model, { order: 'size', threads: 2, onResult: (r) => streamed.push(r.layer) });
  assert.deepEqual(streamed, results.map((r) => r.layer));
  assert.equal(results.length, 6);
  const params = results.map((r) => r.shape[0] * r.shape[1]);
  assert.deepEqual(params, [...params].sort((a, b) => b - a), 'largest first');
  for (const r of results) {
    const layer = model.layers.find((l) => l.name === r.layer)!;
    const mats = layerMatrices(model, layer);
    const direct = mats.map((m) => singularValues(m.data, m.rows, m.cols));
    if (mats.length === 1) {
      assert.deepEqual(r.singularValues, direct[0]);
      assert.equal(r.groups, undefined);
    } else {
      // Grouped conv: per-group spectra, and the combined view is their union, descending.
      assert.equal(r.groups!.length, 4);
      r.groups!.forEach((g, i) => assert.deepEqual(g, direct[i]));
      assert.deepEqual(r.singularValues, Float64Array.from(direct.flatMap((d) => Array.from(d))).sort().reverse());
    }
    assert.equal(r.metrics.spectral, r.singularValues[0]);
  }
});

test('module order keeps the model order', async () => {
  const model = await openModel(modelPath);
  const results = await computeSpectra(model, { order: 'module', threads: 2 });
  assert.deepEqual(results.map((r) => r.layer), model.layers.map((l) => l.name));
});

test('cancellation mid-model stops the pool with CANCELLED', async () => {
  const model = await openModel(modelPath);
  const controller = new AbortController();
  const seen: LayerSpectrum[] = [];
  await assert.rejects(
    computeSpectra(model, { threads: 1, signal: controller.signal, onResult: (r) => { seen.push(r); controller.abort(); } }),
    (e: unknown) => e instanceof RankscopeError && e.code === 'CANCELLED');
  assert.equal(seen.length, 1);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(computeSpectra(model, { signal: pre.signal }), (e: unknown) => e instanceof RankscopeError && e.code === 'CANCELLED');
});

test('cache: a reopened model and a copy with one changed layer recompute only that layer', async () => {
  const cacheDir = join(dir, 'cache1');
  const first = await computeSpectra(await openModel(modelPath), { cacheDir, threads: 2 });
  assert.equal(readdirSync(cacheDir).length, 6);
  // Served from the cache: same keys, same values, no new entries.
  const again = await computeSpectra(await openModel(modelPath), { cacheDir, threads: 2 });
  again.forEach((r, i) => {
    assert.equal(r.hash, first[i].hash);
    assert.deepEqual(r.singularValues, first[i].singularValues);
    assert.deepEqual(r.metrics, first[i].metrics); // worker-computed (cold) = main-thread (cache hit)
  });
  const changedPath = join(dir, 'changed.onnx');
  writeModel(changedPath, false, 2);
  const changed = await computeSpectra(await openModel(changedPath), { cacheDir, threads: 2 });
  const differing = changed.filter((r) => !first.some((f) => f.hash === r.hash));
  assert.equal(differing.length, 1, 'only the scaled layer is new');
  assert.ok(maxAbsDiff(differing[0].singularValues, first.find((f) => f.layer === differing[0].layer)!.singularValues.map((s) => 2 * s)) < 1e-5);
  assert.equal(readdirSync(cacheDir).length, 7);
});

test('cache: a corrupt entry is recomputed, not trusted', async () => {
  const cacheDir = join(dir, 'cache2');
  const model = await openModel(modelPath);
  const first = await computeSpectra(model, { cacheDir, order: 'module' });
  const cache = new SpectrumCache(cacheDir);
  const files = readdirSync(cacheDir).map((f) => join(cacheDir, f));
  // One entry with a tampered value (valid JSON, wrong checksum), one truncated.
  const entry = JSON.parse(readFileSync(files[0], 'utf8'));
  entry.singularValues[0] *= 10;
  writeFileSync(files[0], JSON.stringify(entry));
  writeFileSync(files[1], readFileSync(files[1], 'utf8').slice(0, 40));
  const key0 = entry.key as string;
  assert.equal(cache.get(key0), undefined);
  const again = await computeSpectra(model, { cacheDir, order: 'module' });
  again.forEach((r, i) => assert.deepEqual(r.singularValues, first[i].singularValues));
  assert.ok(cache.get(key0), 'recomputed entry written back');
});

test('cache: the size bound evicts least recently used entries', () => {
  const cacheDir = join(dir, 'cache3');
  const cache = new SpectrumCache(cacheDir, 20_000);
  const values = Float64Array.from({ length: 300 }, (_, i) => 1 / (i + 1));
  for (let i = 0; i < 20; i++) cache.put(SpectrumCache.key(`t${i}`, 'v'), { singularValues: values });
  assert.ok(cache.size() <= 20_000, `size ${cache.size()}`);
  assert.ok(cache.get(SpectrumCache.key('t19', 'v')), 'newest kept');
  assert.equal(cache.get(SpectrumCache.key('t0', 'v')), undefined, 'oldest evicted');
});

test('NaN weights reject with NUMERIC naming the layer', async () => {
  const nanPath = join(dir, 'nan.onnx');
  writeModel(nanPath, true);
  const model = await openModel(nanPath);
  await assert.rejects(computeSpectra(model, { threads: 2 }), (e: unknown) =>
    e instanceof RankscopeError && e.code === 'NUMERIC' && /Layer 'blocks\.2\.fc'/.test(e.message) && /NaN/.test(e.message));
});

test('unknown layer names are NOT_FOUND', async () => {
  const model = await openModel(modelPath);
  await assert.rejects(computeSpectra(model, { layers: ['nope'] }), (e: unknown) => e instanceof RankscopeError && e.code === 'NOT_FOUND');
  const one = await computeSpectra(model, { layers: ['conv'] });
  assert.deepEqual(one.map((r) => r.layer), ['conv']);
});

test('float16 and bfloat16 weights are widened first and match scipy on the widened values', async () => {
  const path = join(dir, 'half.onnx');
  const reference = JSON.parse(runPython(`
import sys, json, numpy as np, onnx, scipy.linalg as sl
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(11)
w16 = (rng.standard_normal((48, 40)) * 0.1).astype(np.float16)
w32 = (rng.standard_normal((40, 56)) * 0.1).astype(np.float32)
bf = (w32.view(np.uint32) >> 16).astype(np.uint16)          # truncate to bfloat16
bf_wide = (bf.astype(np.uint32) << 16).view(np.float32)       # what a reader must widen it to
bft = h.make_tensor('fc2.weight', T.BFLOAT16, [40, 56], bf.tobytes(), raw=True)
nodes = [h.make_node('MatMul', ['x', 'fc1.weight'], ['h'], name='/fc1/MatMul'),
         h.make_node('MatMul', ['h', 'fc2.weight'], ['y'], name='/fc2/MatMul')]
g = h.make_graph(nodes, 'g', [h.make_tensor_value_info('x', T.FLOAT16, [1, 48])], [h.make_tensor_value_info('y', T.BFLOAT16, None)],
                 [nh.from_array(w16, 'fc1.weight'), bft])
m = h.make_model(g, opset_imports=[h.make_opsetid('', 17)]); m.ir_version = 8
onnx.save(m, sys.argv[1])
print(json.dumps({'fc1': sl.svdvals(w16.astype(np.float64)).tolist(), 'fc2': sl.svdvals(bf_wide.astype(np.float64)).tolist()}))
`, [path]));
  const results = await computeSpectra(await openModel(path), { order: 'module', threads: 1 });
  assert.deepEqual(results.map((r) => r.layer), ['fc1', 'fc2']);
  for (const r of results) {
    const ref: number[] = reference[r.layer];
    assert.equal(r.singularValues.length, ref.length);
    r.singularValues.forEach((s, i) => assert.ok(Math.abs(s - ref[i]) <= 1e-5 * ref[0], `${r.layer} σ_${i}`));
  }
});
