// layerSpectra, the one entry point for "the spectra of these layers": dense and factorized layers
// in one call give the same record; a factorized layer's singular values are those of A·B, checked
// against numpy's SVD of the factors read back by Python's onnx (grouped convs per group); dense
// layers equal LINALG's computeSpectra; factorized spectra are cached like dense ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressToFile, planModel } from '../../../src/core/compress';
import { layerSpectra, planSpectra } from '../../../src/core/compress/spectra';
import { RankscopeError } from '../../../src/core/errors';
import { openOnnx } from '../../../src/core/formats/onnx';
import { computeSpectra, spectrumMetrics } from '../../../src/core/linalg';
import { runPython } from '../../helpers/python';
import { buildFixtures } from './helpers';

let dir: string;
const RANK = 3;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-layer-spectra-'));
  buildFixtures(join(dir, 'full'), 0);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** numpy: σ of A·B for each factorized layer of `path` (per group for convs, merged descending). */
function numpyFactorSpectra(path: string): Record<string, { sv: number[]; groups: number[][] }> {
  return JSON.parse(runPython(String.raw`
import json, sys, onnx, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
t = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
meta = {p.key: p.value for p in m.metadata_props}
out = {}
for e in json.loads(meta["rankscope.compressed"]):
    a, b = t[e["factors"][0]], t[e["factors"][1]]
    rows, cols = e["originalShape"]
    if e["layout"] == "conv":
        g, k = e["groups"], a.shape[1]
        a2, b2 = a.reshape(a.shape[0], k), b.reshape(b.shape[0], -1)
        per = rows // g
        mats = [a2[i * per:(i + 1) * per] @ b2[i * k:(i + 1) * k] for i in range(g)]
    else:
        # Stored in the weight's layout: [out,k]·[k,in], or [k,out] and [in,k] for x·W weights.
        p = a @ b if a.shape[1] == b.shape[0] and a.shape[0] * b.shape[1] == rows * cols else b @ a
        mats = [p]
    groups = [np.linalg.svd(x, compute_uv=False).tolist() for x in mats]
    out[e["layer"]] = dict(sv=sorted([s for gr in groups for s in gr], reverse=True), groups=groups)
print(json.dumps(out))
`, [path]));
}

function close(ours: ArrayLike<number>, ref: number[], tol: number, what: string): void {
  assert.equal(ours.length, ref.length, `${what}: count`);
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - ref[i]!));
  assert.ok(worst <= tol, `${what}: max |Δσ| ${worst} > ${tol}`);
}

test('dense and factorized layers in one call: one record each, factorized σ = numpy σ(A·B) (grouped convs per group)', async () => {
  for (const name of ['conv', 'matmul', 'gemm']) {
    const input = await openOnnx(join(dir, 'full', `${name}.onnx`));
    const output = join(dir, `${name}.r${RANK}.onnx`);
    // Factorize every other layer, so one call sees both kinds.
    const chosen = input.layers.filter((l) => l.factorizable).filter((_, i) => i % 2 === 0).map((l) => l.name);
    await compressToFile(input, await planModel(input, { rank: RANK, layers: chosen }), output);
    const model = await openOnnx(output);
    const names = model.layers.filter((l) => l.factorizable || l.compressed).map((l) => l.name);
    assert.ok(model.layers.some((l) => l.compressed) && model.layers.some((l) => l.factorizable), `${name}: both kinds`);
    const streamed: string[] = [];
    const spectra = await layerSpectra(model, { layers: names, order: 'module', threads: 2, onResult: (s) => streamed.push(s.layer) });
    assert.deepEqual(spectra.map((s) => s.layer), names, `${name}: module order`);
    assert.deepEqual(streamed, names, `${name}: streamed in order`);
    const reference = numpyFactorSpectra(output);
    const dense = new Map((await computeSpectra(model, { layers: names.filter((n) => !model.layers.find((l) => l.name === n)!.compressed), threads: 2 })).map((s) => [s.layer, s]));
    for (const s of spectra) {
      const layer = model.layers.find((l) => l.name === s.layer)!;
      assert.deepEqual(s.shape, layer.shape, `${name}/${s.layer}: shape`);
      assert.match(s.hash, /^[0-9a-f]{16,}/, `${name}/${s.layer}: cache key`);
      assert.deepEqual(s.metrics, spectrumMetrics(s.singularValues, layer.shape), `${name}/${s.layer}: metrics of its σ`);
      if (!layer.compressed) {
        assert.deepEqual(s, dense.get(s.layer), `${name}/${s.layer}: the dense record is LINALG's`);
        continue;
      }
      const ref = reference[s.layer]!;
      const tol = 1e-6 * ref.sv[0]!;
      close(s.singularValues, ref.sv, tol, `${name}/${s.layer}`);
      const rank = RANK * (layer.groups ?? 1); // rank k per group
      assert.ok(s.singularValues[rank - 1]! > 1e3 * (s.singularValues[rank] ?? 0) + tol, `${name}/${s.layer}: A·B has rank ${rank}`);
      if ((layer.groups ?? 1) > 1) {
        assert.equal(s.groups?.length, layer.groups, `${name}/${s.layer}: one spectrum per group`);
        s.groups!.forEach((g, i) => close(g, ref.groups[i]!, tol, `${name}/${s.layer} group ${i}`));
      } else {
        assert.equal(s.groups, undefined);
      }
    }
    // Planning reads the same records.
    const planned = await planSpectra(model, model.layers.filter((l) => names.includes(l.name)), { threads: 2 });
    assert.deepEqual(planned, spectra, `${name}: planSpectra`);
  }
});

test('factorized spectra are cached by their factors like dense ones; LINALG alone still refuses them', async () => {
  const model = await openOnnx(join(dir, 'conv.r3.onnx'));
  const factorized = model.layers.filter((l) => l.compressed).map((l) => l.name);
  assert.ok(factorized.includes('c3'), 'the grouped conv is factorized');
  const cacheDir = mkdtempSync(join(tmpdir(), 'rankscope-layer-spectra-cache-'));
  const first = await layerSpectra(model, { layers: factorized, cacheDir, threads: 2 });
  assert.equal(readdirSync(cacheDir).length, factorized.length);
  const again = await layerSpectra(await openOnnx(join(dir, 'conv.r3.onnx')), { layers: factorized, cacheDir, threads: 2 });
  assert.deepEqual(again.map((s) => [s.layer, s.hash, [...s.singularValues]]), first.map((s) => [s.layer, s.hash, [...s.singularValues]]));
  assert.equal(readdirSync(cacheDir).length, factorized.length, 'hits, no new entries');
  await assert.rejects(computeSpectra(model, { layers: ['c3'] }), (e: unknown) => e instanceof RankscopeError && e.code === 'UNSUPPORTED');
  rmSync(cacheDir, { recursive: true, force: true });
});
