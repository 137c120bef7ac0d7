// The graph rewrite end to end: models with every layer kind (built by Python's onnx), compressed
// by us, run by ONNX Runtime against the originals; weights checked against numpy's SVD.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeOnnx, openOnnx } from '../../../src/core/formats/onnx';
import { layerMatrices } from '../../../src/core/model/matrix';
import { originalParams, paramTotals } from '../../../src/core/model/params';
import { applyPlan, compressToFile, factorizePlan, matricesOf, planAndFactorize, planModel, recomposeLayers, type CompressRequest } from '../../../src/core/compress';
import { RankscopeError } from '../../../src/core/errors';
import { runPython } from '../../helpers/python';
import { buildFixtures, FIXTURES, HALF_FIXTURES, randomFeeds, relativeDeviation, runModel, type Manifest } from './helpers';

let dir: string;
let full: Manifest;
const RANK = 4;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-compress-'));
  full = buildFixtures(join(dir, 'full'), 0);
  buildFixtures(join(dir, 'lowrank'), RANK);
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function compress(input: string, output: string, request: CompressRequest) {
  const model = await openOnnx(input);
  const plan = await planModel(model, request);
  await compressToFile(model, plan, output);
  return { model, plan };
}

async function compare(name: string, input: string, output: string, seeds = [1, 2, 3]): Promise<number> {
  let worst = 0;
  for (const seed of seeds) {
    const feeds = randomFeeds(full[name].inputs, seed);
    worst = Math.max(worst, relativeDeviation(await runModel(input, feeds), await runModel(output, feeds)));
  }
  return worst;
}

const float32Fixtures = FIXTURES.filter((f) => !HALF_FIXTURES.includes(f));

test('full rank: every layer kind computes the original outputs within 1e-5 relative (ONNX Runtime)', async () => {
  for (const name of float32Fixtures) {
    const input = join(dir, 'full', `${name}.onnx`);
    const output = join(dir, `${name}.full.onnx`);
    const { plan } = await compress(input, output, { rankRatio: 1, force: true });
    const skipped = plan.layers.filter((l) => l.skipped);
    assert.deepEqual(skipped.map((l) => `${l.layer}: ${l.reason}`), [], name);
    const compressed = await openOnnx(output);
    assert.equal(compressed.layers.filter((l) => l.compressed).length, plan.layers.length, `${name}: the reader lists every factorized layer`);
    const deviation = await compare(name, input, output);
    assert.ok(deviation < 1e-5, `${name}: relative deviation ${deviation}`);
  }
});

test('planAndFactorize (one reduction per layer) gives planModel\'s plan and factorizePlan\'s factors, for every policy kind and a budget', async () => {
  const requests: CompressRequest[] = [{ energy: 0.8 }, { rank: 3 }, { rankRatio: 0.5, roundTo: 2 }, { paramRatio: 0.4 }, { budget: 0.5 }];
  for (const name of FIXTURES) {
    const model = await openOnnx(join(dir, 'full', `${name}.onnx`));
    for (const request of requests) {
      const expected = await planModel(model, request);
      const { plan, factors, secondPass } = await planAndFactorize(model, request);
      assert.deepEqual(plan, expected, `${name} ${JSON.stringify(request)}: plan`);
      // Per-layer policies: every factor comes from the single pass; a budget needs all spectra first.
      assert.deepEqual(secondPass, 'budget' in request ? [...factors.keys()] : [], `${name} ${JSON.stringify(request)}: second pass`);
      const reference = await factorizePlan(model, expected);
      assert.deepEqual([...factors.keys()].sort(), [...reference.keys()].sort(), `${name}: factorized layers`);
      for (const [layer, groups] of reference) {
        groups.forEach((g, i) => {
          const f = factors.get(layer)![i];
          assert.equal(f.k, g.k, `${name} ${layer}: k`);
          const worst = Math.max(...g.a.map((x, j) => Math.abs(x - f.a[j])), ...g.b.map((x, j) => Math.abs(x - f.b[j])));
          assert.ok(worst <= 1e-12, `${name} ${layer} ${JSON.stringify(request)}: factors differ by ${worst}`);
        });
      }
    }
  }
});

test('exactly rank-r weights compressed to r: outputs within 1e-4, exact parameter counts, reader lists the pairs', async () => {
  for (const name of FIXTURES) {
    const input = join(dir, 'lowrank', `${name}.onnx`);
    const output = join(dir, `${name}.r${RANK}.onnx`);
    const { model, plan } = await compress(input, output, { rank: RANK });
    const compressed = await openOnnx(output);
    let saved = 0;
    for (const row of plan.layers) {
      assert.ok(!row.skipped, `${name}/${row.layer}: ${row.reason}`);
      const layer = model.layers.find((l) => l.name === row.layer)!;
      const groups = layer.groups ?? 1;
      const expected = groups * RANK * (layer.shape[0] / groups + layer.shape[1]);
      assert.equal(row.paramsAfter, expected, `${name}/${row.layer} planned parameters`);
      assert.ok(Math.abs(row.energyKept - 1) < 1e-6, `${name}/${row.layer} keeps all energy`);
      const listed = compressed.layers.find((l) => l.name === row.layer);
      assert.ok(listed?.compressed, `${name}/${row.layer} listed as compressed`);
      assert.equal(listed.compressed.rank, RANK);
      assert.deepEqual(listed.compressed.originalShape, layer.shape);
      const [a, b] = listed.compressed.factors.map((f) => compressed.tensor(f)!);
      assert.equal(a.size + b.size, expected, `${name}/${row.layer} stored factor parameters`);
      assert.equal(a.dtype, layer.dtype);
      saved += layer.params - expected;
    }
    // Gemm before opset 11 needs a C input: the first Gemm of a pair gets a zero scalar.
    const zeros = compressed.proto.graph!.initializer.filter((t) => t.name.endsWith('.zero')).length;
    assert.equal(zeros, name === 'gemm_opset9' ? 1 : 0);
    assert.equal(compressed.summary.totalParams, model.summary.totalParams - saved + zeros, `${name}: model parameters`);
    assert.equal(plan.totals.modelParamsAfter + zeros, compressed.summary.totalParams, `${name}: plan totals`);
    const bytesPer = HALF_FIXTURES.includes(name) ? 2 : 4;
    const shrink = statSync(input).size - statSync(output).size;
    // The file shrinks by the saved weight bytes, less the metadata record and the extra nodes (under 2 KiB here).
    const record = Buffer.byteLength(compressed.summary.metadata['rankscope.compressed'] ?? '');
    assert.ok(shrink <= saved * bytesPer && shrink > saved * bytesPer - record - 2048, `${name}: file shrank ${shrink} B for ${saved * bytesPer} B of weights (record ${record} B)`);
    const deviation = await compare(name, input, output);
    assert.ok(deviation < (HALF_FIXTURES.includes(name) ? 2e-2 : 1e-4), `${name}: relative deviation ${deviation}`);
  }
});

test('a factorized layer is listed as the layer it replaced (layout, groups, kernel, stored shape); counts come from its factors', async () => {
  for (const name of FIXTURES) {
    const input = join(dir, 'lowrank', `${name}.onnx`);
    const output = join(dir, `${name}.facts.onnx`);
    const { model, plan } = await compress(input, output, { rank: RANK });
    const compressed = await openOnnx(output);
    for (const row of plan.layers) {
      const layer = model.layers.find((l) => l.name === row.layer)!;
      const listed = compressed.layers.find((l) => l.name === row.layer)!;
      const where = `${name}/${row.layer}`;
      assert.equal(listed.layout, layer.layout, `${where}: layout`);
      assert.equal(listed.groups, layer.groups, `${where}: groups`);
      assert.deepEqual(listed.kernel, layer.kernel, `${where}: kernel`);
      assert.deepEqual(listed.tensorShape, layer.tensorShape, `${where}: the original's stored shape`);
      assert.deepEqual(listed.shape, layer.shape, `${where}: matrix view`);
      const [a, b] = listed.compressed!.factors.map((f) => compressed.tensor(f)!);
      assert.equal(listed.params, a.size + b.size, `${where}: parameters are the factors'`);
      assert.equal(originalParams(listed), layer.params, `${where}: the original's parameters`);
    }
    const zeros = compressed.proto.graph!.initializer.filter((t) => t.name.endsWith('.zero')).length;
    assert.deepEqual(paramTotals(compressed), { original: model.summary.totalParams + zeros, current: compressed.summary.totalParams }, `${name}: totals`);
    assert.deepEqual(paramTotals(model), { original: model.summary.totalParams, current: model.summary.totalParams });
  }
});

test('rank k < r: each layer\'s weight error is exactly the dropped energy (numpy SVD reference)', async () => {
  for (const name of ['matmul', 'gemm', 'conv', 'embedding']) {
    const input = join(dir, 'full', `${name}.onnx`);
    const output = join(dir, `${name}.k3.onnx`);
    const { model, plan } = await compress(input, output, { rank: 3 });
    const compressed = await openOnnx(output);
    for (const row of plan.layers) {
      const layer = model.layers.find((l) => l.name === row.layer)!;
      const original = layerMatrices(model, layer);
      const approx = matricesOf(compressed, compressed.layers.find((l) => l.name === row.layer)!);
      let err = 0;
      let total = 0;
      for (let g = 0; g < original.length; g++) {
        for (let i = 0; i < original[g].data.length; i++) {
          err += (original[g].data[i] - approx[g].data[i]) ** 2;
          total += original[g].data[i] ** 2;
        }
      }
      // numpy's LAPACK SVD of the same groups: dropped σ² share at k = 3.
      const payload = JSON.stringify(original.map((m) => ({ rows: m.rows, cols: m.cols, data: Array.from(m.data) })));
      const dropped = Number(runPython(`
import sys, json, numpy as np
groups = json.load(sys.stdin)
s = [np.linalg.svd(np.array(g['data'], dtype=np.float64).reshape(g['rows'], g['cols']), compute_uv=False) for g in groups]
print(sum((x[3:] ** 2).sum() for x in s) / sum((x ** 2).sum() for x in s))`, [], payload));
      assert.ok(Math.abs(err / total - dropped) < 1e-5, `${name}/${row.layer}: error ${err / total} vs dropped energy ${dropped}`);
      assert.ok(Math.abs(1 - row.energyKept - dropped) < 1e-5, `${name}/${row.layer}: plan energy ${row.energyKept}`);
      const entry = compressed.layers.find((l) => l.name === row.layer)!.compressed!;
      assert.ok(Math.abs(entry.energyKept - row.energyKept) < 1e-9);
    }
  }
});

test('re-compressing a factorized layer re-factorizes A·B (no third matrix) and equals compressing to that rank directly', async () => {
  const input = join(dir, 'full', 'matmul.onnx');
  const at8 = join(dir, 'matmul.k8.onnx');
  const at8to3 = join(dir, 'matmul.k8-3.onnx');
  const at3 = join(dir, 'matmul.k3direct.onnx');
  await compress(input, at8, { rank: 8 });
  const { plan } = await compress(at8, at8to3, { rank: 3, layers: ['fc1', 'fc2', 'left'] });
  assert.ok(plan.layers.every((l) => !l.skipped && l.currentRank === 8), JSON.stringify(plan.layers));
  await compress(input, at3, { rank: 3 });
  const twice = await openOnnx(at8to3);
  const once = await openOnnx(at3);
  assert.equal(twice.proto.graph!.initializer.length, once.proto.graph!.initializer.length);
  assert.equal(twice.proto.graph!.node.length, once.proto.graph!.node.length);
  for (const l of twice.layers) {
    const direct = once.layers.find((x) => x.name === l.name)!;
    assert.equal(l.compressed!.rank, 3);
    assert.ok(Math.abs(l.compressed!.energyKept - direct.compressed!.energyKept) < 1e-5, `${l.name} energy`);
  }
  assert.ok(await compare('matmul', at3, at8to3) < 1e-4);
  // Growing back is refused: A·B has no more rank.
  const again = await openOnnx(at8to3);
  const grow = await planModel(again, { rank: 5, layers: ['fc1'] });
  assert.equal(grow.layers[0].skipped, true);
});

test('recompose makes A·B a dense weight with the original nodes, naming the source file', async () => {
  for (const name of ['matmul', 'gemm', 'conv', 'embedding', 'shared']) {
    const input = join(dir, 'full', `${name}.onnx`);
    const packed = join(dir, `${name}.k5.onnx`);
    const restored = join(dir, `${name}.restored.onnx`);
    await compress(input, packed, { rank: 5 });
    const model = await openOnnx(packed);
    const names = model.layers.filter((l) => l.compressed).map((l) => l.name);
    const result = await recomposeLayers(model, names, restored);
    assert.ok(result.restored.every((r) => r.sourceFile === input), JSON.stringify(result.restored));
    const dense = await openOnnx(restored);
    const original = await openOnnx(input);
    assert.deepEqual(dense.layers.map((l) => [l.name, l.weight, l.shape, l.nodes]), original.layers.map((l) => [l.name, l.weight, l.shape, l.nodes]), name);
    assert.ok(dense.layers.every((l) => !l.compressed));
    const ops = (m: typeof dense) => m.proto.graph!.node.map((n) => `${n.opType} ${n.name}`).sort();
    assert.deepEqual(ops(dense), ops(original), `${name}: the original nodes are back`);
    assert.match(dense.summary.metadata['rankscope.restored'], new RegExp(input.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    assert.ok(await compare(name, packed, restored) < 1e-5, `${name}: restored = A·B`);
  }
});

test('models keep opset, IR version, producer and metadata; the input is never modified or overwritten', async () => {
  const input = join(dir, 'full', 'gemm_opset9.onnx');
  const before = createHash('sha256').update(readFileSync(input)).digest('hex');
  const model = await openOnnx(input);
  const encoded = encodeOnnx(model.proto);
  const plan = await planModel(model, { rank: 4 });
  const proto = applyPlan(model, plan);
  assert.deepEqual(encodeOnnx(model.proto), encoded, 'applyPlan leaves the input proto untouched');
  assert.equal(proto.irVersion, 3n);
  assert.deepEqual(proto.opsetImport.map((o) => Number(o.version)), [9]);
  assert.equal(proto.producerName, 'rankscope-tests');
  assert.equal(proto.metadataProps.find((p) => p.key === 'author')?.value, 'tests');
  await assert.rejects(compressToFile(model, plan, input), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT');
  assert.equal(createHash('sha256').update(readFileSync(input)).digest('hex'), before);
  const out = join(dir, 'opset9.out.onnx');
  await compressToFile(model, plan, out);
  assert.ok(Number.isFinite(await compare('gemm_opset9', input, out)), 'ONNX Runtime runs the opset-9 rewrite');
});

test('a plan is refused for a model with different weights (PLAN_MISMATCH), and survives a JSON round trip', async () => {
  const a = await openOnnx(join(dir, 'full', 'matmul.onnx'));
  const b = await openOnnx(join(dir, 'lowrank', 'matmul.onnx'));
  const plan = JSON.parse(JSON.stringify(await planModel(a, { energy: 0.8 })));
  assert.throws(() => applyPlan(b, plan), (e: unknown) => e instanceof RankscopeError && e.code === 'PLAN_MISMATCH' && /fc1/.test(e.message));
  const proto = applyPlan(a, plan);
  assert.ok(proto.graph!.initializer.some((t) => t.name === 'fc1.lowrank_A'));
});

test('external data: a model saved with external data is written with external data and runs', async () => {
  const input = join(dir, 'ext', 'matmul.onnx');
  runPython(`
import onnx, sys, os
m = onnx.load(sys.argv[1])
os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True)
onnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='matmul.weights', size_threshold=0)`,
  [join(dir, 'full', 'matmul.onnx'), input]);
  const output = join(dir, 'ext', 'matmul.k6.onnx');
  await compress(input, output, { rank: 6 });
  assert.ok(existsSync(`${output}.data`), 'external data file written');
  assert.ok(statSync(output).size < 8192, 'weights are not inline');
  const feeds = randomFeeds(full.matmul.inputs, 7);
  const direct = join(dir, 'matmul.k6.inline.onnx');
  await compress(join(dir, 'full', 'matmul.onnx'), direct, { rank: 6 });
  assert.ok(relativeDeviation(await runModel(direct, feeds), await runModel(output, feeds)) < 1e-6);
});

test('compressToFile is cancellable: CANCELLED, and no output file is left', async () => {
  const model = await openOnnx(join(dir, 'full', 'conv.onnx'));
  const plan = await planModel(model, { rank: 3 });
  const output = join(dir, 'cancelled.onnx');
  const controller = new AbortController();
  const pending = compressToFile(model, plan, output, { signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, (e: unknown) => e instanceof RankscopeError && e.code === 'CANCELLED');
  assert.ok(!existsSync(output));
});

test('a weight held in a ConstantOfShape fill (ONNX light models) leaves the graph with its node: totals shrink as planned', async () => {
  const input = join(dir, 'fill.onnx');
  runPython(`
import sys, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
g = helper.make_graph([
    helper.make_node('ConstantOfShape', ['fill.shape'], ['fill.weight'], name='/fill/ConstantOfShape', value=numpy_helper.from_array(np.array([0.25], np.float32))),
    helper.make_node('MatMul', ['x', 'fill.weight'], ['y'], name='/fill/MatMul'),
], 'fill', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [3, 48])], [helper.make_tensor_value_info('y', TensorProto.FLOAT, [3, 40])],
   [numpy_helper.from_array(np.array([48, 40], np.int64), 'fill.shape')])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]), sys.argv[1])`, [input]);
  const output = join(dir, 'fill.k1.onnx');
  const { model, plan } = await compress(input, output, { rank: 1 });
  assert.equal(model.layers[0].params, 48 * 40);
  const compressed = await openOnnx(output);
  assert.deepEqual(compressed.proto.graph!.node.map((n) => n.opType), ['MatMul', 'MatMul'], 'the fill node is gone');
  assert.equal(compressed.summary.totalParams, plan.totals.modelParamsAfter);
  assert.equal(compressed.summary.totalParams, model.summary.totalParams - 48 * 40 + 48 + 40);
  const feeds = { x: randomFeeds({ x: [[3, 48], 'float32'] }, 5).x };
  assert.ok(relativeDeviation(await runModel(input, feeds), await runModel(output, feeds)) < 1e-5, 'a constant matrix is exactly rank 1');
});
