import * as assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import { runPython } from '../helpers/python';
import { api, item, openAndSettle, waitFor } from './api';
import { fileHash, makeFixture, type Fixture } from './fixtures';

/** The dense matrix of a layer as ONNX Runtime would compute it, read back with Python's onnx (A·B for a factorized one). */
function denseOf(model: string, weight: string, factors?: [string, string]): number[][] {
  return JSON.parse(runPython(String.raw`
import json, sys, onnx, numpy as np
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
t = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
f = json.loads(sys.argv[3])
# Factors are stored in the weight's layout: [out,k]·[k,in] or, for x·W weights, [in,k]·[k,out].
w = (t[f[0]] @ t[f[1]] if t[f[0]].shape[1] == t[f[1]].shape[0] else t[f[1]] @ t[f[0]]) if f else t[sys.argv[2]]
print(json.dumps(w.tolist()))
`, [model, weight, JSON.stringify(factors ?? null)])) as number[][];
}

/** `m`, transposed when that makes it the shape of `like` (factor storage follows the weight's layout). */
function oriented(m: number[][], like: number[][]): number[][] {
  if (m.length === like.length && m[0]!.length === like[0]!.length) return m;
  return m[0]!.map((_, j) => m.map((row) => row[j]!));
}

suite('compress → new file → tree updated → restore / recompose', () => {
  let fx: Fixture;
  suiteSetup(async () => {
    fx = makeFixture();
    await openAndSettle(await api(), fx.model);
  });

  test('Compress Layer at 95 % energy writes model.rankscope.onnx with numpy\'s rank, original untouched', async () => {
    const a = await api();
    const before = fileHash(fx.model);
    const target = fx.layers.find((l) => l.name === 'encoder.layers.1.fc2')!;
    const node = a.tree.nodeFor(target.name)!;
    const written = await vscode.commands.executeCommand<string>('rankscope.compressLayer', node, [node], { policy: { energy: 0.95 } });
    assert.equal(written, join(fx.dir, 'model.rankscope.onnx'));
    assert.ok(existsSync(written));
    assert.equal(fileHash(fx.model), before, 'the input model was modified');
    // The tree now shows the new file, with the layer compressed at numpy's r95.
    assert.equal(a.session.path, written);
    const layer = a.session.layer(target.name)!;
    assert.equal(layer.compressed?.rank, target.r95);
    const ti = item(a, a.tree.nodeFor(target.name)!);
    // The core lists a factorized pair as not factorizable (it re-compresses only to a lower rank).
    assert.match(String(ti.contextValue), /^layer(\+factorizable)?\+compressed$/);
    const after = target.r95 * (target.shape[0] + target.shape[1]);
    assert.match(String(ti.description), new RegExp(`^64×128 · 8\\.19K → ${(after / 1000).toFixed(2)}K · rank ${target.r95}$`));
    const totals = a.session.totals()!;
    assert.equal(totals.original, fx.totalParams);
    assert.equal(totals.current, fx.totalParams - target.params + after);
    assert.match(String(item(a, a.tree.getChildren()[0]!).description), /^33\.4K → .* params \(−\d+ %\)$/);
    // The new model's spectra come in too; the factorized layer's (of A·B) on demand, rank k.
    await a.session.whenSpectraSettled();
    for (const l of fx.layers.filter((x) => x.name !== target.name)) {
      assert.match(String(item(a, a.tree.nodeFor(l.name)!).description), new RegExp(`r95 ${l.r95}$`), `${l.name} of the new model`);
    }
    await vscode.commands.executeCommand('rankscope.showSpectrum', target.name);
    const sv = a.session.spectrum(target.name)?.singularValues;
    assert.ok(sv, 'spectrum of the factorized layer');
    assert.equal(a.spectrum.current?.series[0]?.compressedRank, target.r95);
    assert.ok(sv[target.r95 - 1]! > 0.05 * sv[0]! && (sv[target.r95] ?? 0) <= 0.01 * sv[0]!, `A·B has rank ${target.r95}`);
    // A·B is the best rank-k approximation: its error is exactly the dropped singular values (numpy).
    const w = denseOf(fx.model, 'onnx::MatMul_103');
    const ab = oriented(denseOf(written, '', layer.compressed!.factors), w);
    let err = 0;
    for (let i = 0; i < w.length; i++) for (let j = 0; j < w[0]!.length; j++) err += (w[i]![j]! - ab[i]![j]!) ** 2;
    const dropped = target.sv.slice(target.r95).reduce((s, x) => s + x * x, 0);
    assert.ok(Math.abs(Math.sqrt(err) - Math.sqrt(dropped)) <= 1e-4 * target.sv[0]!, `‖W − AB‖ ${Math.sqrt(err)} vs numpy ${Math.sqrt(dropped)}`);
  });

  test('Compress Layers with a fixed rank on two layers; the next free name is used', async () => {
    const a = await api();
    const written = await vscode.commands.executeCommand<string>('rankscope.compressLayers', { layers: ['encoder.layers.0.fc1', 'head'], policy: { rank: 3 } });
    assert.equal(basename(written), 'model.rankscope-2.onnx');
    assert.equal(a.session.layer('encoder.layers.0.fc1')?.compressed?.rank, 3);
    assert.equal(a.session.layer('head')?.compressed?.rank, 3);
    assert.equal(a.session.layer('encoder.layers.1.fc2')?.compressed?.rank, fx.layers[3]!.r95, 'earlier compression kept');
  });

  test('Recompose to Dense puts A·B back as a dense weight in a new file', async () => {
    const a = await api();
    const compressedFile = a.session.path!;
    const c = a.session.layer('head')!.compressed!;
    const ab = denseOf(compressedFile, '', c.factors);
    const written = await vscode.commands.executeCommand<string>('rankscope.recomposeToDense', { layers: ['head'] });
    assert.equal(written, join(fx.dir, 'model.rankscope-2.dense.onnx'));
    assert.ok(existsSync(written));
    assert.equal(a.session.path, written);
    const head = a.session.layer('head')!;
    assert.equal(head.compressed, undefined);
    assert.equal(head.params, 640);
    assert.equal(item(a, a.tree.nodeFor('head')!).contextValue, 'layer+factorizable');
    const dense = denseOf(written, head.weight);
    const abs = oriented(ab, dense);
    let max = 0;
    for (let i = 0; i < 10; i++) for (let j = 0; j < 64; j++) max = Math.max(max, Math.abs(dense[i]![j]! - abs[i]![j]!));
    assert.ok(max < 1e-5, `recomposed weight differs from A·B by ${max}`);
  });

  test('Restore Original Weights brings back the original weight exactly (not A·B), from the recorded source', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.openModel', join(fx.dir, 'model.rankscope-2.onnx'));
    const target = 'encoder.layers.1.fc2'; // compressed first, from model.onnx
    const c = a.session.layer(target)!.compressed!;
    const node = a.tree.nodeFor(target)!;
    const written = await vscode.commands.executeCommand<string>('rankscope.restoreOriginalWeights', node, [node], { layers: [target] });
    assert.equal(written, join(fx.dir, 'model.rankscope-2.restored.onnx'));
    assert.equal(a.session.path, written);
    const layer = a.session.layer(target)!;
    assert.equal(layer.compressed, undefined);
    assert.ok(a.session.layer('head')?.compressed, 'the other factorized layers stay factorized');
    const original = denseOf(fx.model, 'onnx::MatMul_103');
    assert.deepEqual(denseOf(written, layer.weight), original, 'the weight is the original\'s, value for value');
    const ab = oriented(denseOf(join(fx.dir, 'model.rankscope-2.onnx'), '', c.factors), original);
    const gap = Math.max(...original.flatMap((row, i) => row.map((v, j) => Math.abs(v - ab[i]![j]!))));
    assert.ok(gap > 1e-3, `A·B is not the original (max |Δ| ${gap}), so the test tells the two apart`);
  });

  test('Restore Original Weights refuses a changed or missing source and writes nothing', async () => {
    const a = await api();
    const source = join(fx.dir, 'source.onnx');
    copyFileSync(fx.model, source);
    await vscode.commands.executeCommand('rankscope.openModel', source);
    const packed = await vscode.commands.executeCommand<string>('rankscope.compressLayers', { layers: ['head'], policy: { rank: 3 } });
    assert.equal(packed, join(fx.dir, 'source.rankscope.onnx'));
    // The source's head weight changes after compression: its hash no longer matches the record.
    runPython(String.raw`
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
for i, t in enumerate(m.graph.initializer):
    if t.name == "head.weight":
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) + 0.5, t.name))
onnx.save(m, sys.argv[1])`, [source]);
    assert.equal(await vscode.commands.executeCommand('rankscope.restoreOriginalWeights', { layers: ['head'] }), undefined);
    assert.ok(!existsSync(join(fx.dir, 'source.rankscope.restored.onnx')), 'nothing written for a changed source');
    assert.equal(a.session.path, packed);
    rmSync(source);
    assert.equal(await vscode.commands.executeCommand('rankscope.restoreOriginalWeights', { layers: ['head'] }), undefined);
    assert.ok(!existsSync(join(fx.dir, 'source.rankscope.restored.onnx')), 'nothing written for a missing source');
    // Recompose needs no source.
    assert.equal(await vscode.commands.executeCommand('rankscope.recomposeToDense', { layers: ['head'] }), join(fx.dir, 'source.rankscope.dense.onnx'));
  });

  test('Compress Model to Budget removes at least half of the factorizable parameters', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.openModel', fx.model);
    const written = await vscode.commands.executeCommand<string>('rankscope.compressModelToBudget', { budget: 0.5, allocation: 'energy' });
    assert.ok(written && existsSync(written));
    const totals = a.session.totals()!;
    const factorizable = fx.layers.reduce((s, l) => s + l.params, 0);
    assert.ok(totals.original - totals.current >= 0.5 * factorizable - 1e-9, `saved ${totals.original - totals.current} of ${factorizable}`);
    assert.ok(a.session.model!.layers.some((l) => l.compressed));
  });

  test('Export Report writes every layer with numpy\'s energy ranks', async () => {
    const a = await api();
    await openAndSettle(a, fx.model);
    const out = join(fx.dir, 'report.md');
    assert.equal(await vscode.commands.executeCommand('rankscope.exportReport', { output: out }), out);
    const text = readFileSync(out, 'utf8');
    for (const l of fx.layers) {
      assert.ok(text.includes(`| ${l.name.replace(/_/g, '\\_')} |`), `${l.name} in report`);
      assert.ok(text.includes(`| ${l.r90} | ${l.r95} | ${l.r99} |`), `ranks of ${l.name}`);
    }
  });

  test('a rank larger than the layer allows is refused without writing anything', async () => {
    const a = await api();
    const path = a.session.path;
    const result = await vscode.commands.executeCommand('rankscope.compressLayers', { layers: ['head'], policy: { rank: 500 } });
    assert.equal(result, undefined);
    assert.equal(a.session.path, path);
  });
});

/** A grouped conv (groups 2, weight [64, 24, 3, 3]) and a dense 1×1 conv, written by Python's onnx. */
function groupedConvModel(): { dir: string; model: string; totalParams: number } {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-grouped-'));
  const totalParams = Number(runPython(String.raw`
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(3)
w = rng.standard_normal((64, 24, 3, 3)).astype(np.float32)
p = rng.standard_normal((8, 64, 1, 1)).astype(np.float32)
inits = [numpy_helper.from_array(w, "gconv.weight"), numpy_helper.from_array(p, "proj.weight")]
nodes = [helper.make_node("Conv", ["x", "gconv.weight"], ["h"], name="/gconv/Conv", group=2, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["h", "proj.weight"], ["y"], name="/proj/Conv", kernel_shape=[1, 1])]
graph = helper.make_graph(nodes, "grouped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 48, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
print(w.size + p.size)
`, [join(dir, 'model.onnx')]));
  return { dir, model: join(dir, 'model.onnx'), totalParams };
}

/** Element counts of the named initializers of a file, read by Python's onnx. */
function initializerSizes(model: string, names: string[]): number[] {
  return JSON.parse(runPython(String.raw`
import json, sys, onnx, numpy as np
m = onnx.load(sys.argv[1])
sizes = {i.name: int(np.prod(i.dims)) for i in m.graph.initializer}
print(json.dumps([sizes[n] for n in json.loads(sys.argv[2])]))
`, [model, JSON.stringify(names)])) as number[];
}

suite('a compressed grouped conv counts rank·(out + groups·in)', () => {
  test('tree, totals and overview show what the factors hold', async () => {
    const a = await api();
    const fx = groupedConvModel();
    await openAndSettle(a, fx.model);
    const written = await vscode.commands.executeCommand<string>('rankscope.compressLayers', { layers: ['gconv'], policy: { rank: 2 } });
    assert.ok(written && existsSync(written), 'compressed file written');
    const layer = a.session.layer('gconv')!;
    assert.equal(layer.compressed?.rank, 2);
    const [aSize, bSize] = initializerSizes(written, layer.compressed!.factors);
    // Independently: A is [64, 2, 1, 1], B is [2·2, 24, 3, 3]: 2·(64 + 2·216) = 992.
    assert.equal(aSize! + bSize!, 992);
    assert.equal(layer.params, 992);
    assert.equal(item(a, a.tree.nodeFor('gconv')!).description, '64×216 · 13.8K → 992 · rank 2');
    const totals = a.session.totals()!;
    assert.equal(totals.original, fx.totalParams, 'original total = the dense model');
    assert.equal(totals.current, fx.totalParams - 64 * 216 + 992);
    assert.equal(layer.groups, 2, 'the compressed layer keeps its groups');
    assert.equal(layer.layout, 'conv');
    assert.deepEqual(layer.tensorShape, [64, 24, 3, 3], 'the original stored shape');
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(written), 'rankscope.modelOverview');
    const loaded = await waitFor('overview loaded', () => a.overview.loaded.get(written));
    assert.equal(loaded.summary.originalParams, fx.totalParams);
    assert.equal(loaded.summary.totalParams, totals.current);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    // The spectrum panel sees the real groups: ranks per group of (64/2)×216.
    await vscode.commands.executeCommand('rankscope.showSpectrum', 'gconv');
    const series = a.spectrum.current!.series[0]!;
    assert.equal(series.groups, 2);
    assert.equal(series.params, 992);
    assert.equal(series.groupSingularValues?.length, 2);
    // Each group is 32×216: no rank above 32 exists.
    await assert.rejects(a.spectrum.compressAtRank('gconv', 33), /exceeds min\(out\/groups, in\) = 32/);
  });
});
