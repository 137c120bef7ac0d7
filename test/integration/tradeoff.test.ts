// Issue 13 items 4 and 5 in the extension host: the trade-off sweep streams the cheap points
// before the sensitivity probes and shows the probes as their own counted stage; it sweeps the
// model rankscope.json names (not whatever is open), labels the baseline for what it is, and
// keeps every sweep as its own result set (selectable, stored, never replaced by another).
// Issue 15: rankscope.json's sweep.methods adds whitened points (calibrated on the data first).
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as vscode from 'vscode';
import type { SweepProgress } from '../../webview/tradeoff/protocol';
import { METHOD, readEntries } from '../../src/core/compress/metadata';
import { openOnnx } from '../../src/core/formats/onnx';
import { api, openAndSettle, waitFor, workspaceDir } from './api';
import { makeFixture, type Fixture } from './fixtures';

suite('trade-off: streaming order, probes stage, which model, kept sweeps', () => {
  let fx: Fixture;
  let saved: string | undefined;
  const taskFile = () => join(workspaceDir(), 'rankscope.json');
  const writeTask = (extra: object) => writeFileSync(taskFile(), JSON.stringify({
    data: fx.data, preset: 'none', inputs: { x: 'x_test' }, labels: 'y_test', latency: false, ...extra,
  }));

  suiteSetup(async () => {
    fx = makeFixture();
    saved = existsSync(taskFile()) ? readFileSync(taskFile(), 'utf8') : undefined;
    await openAndSettle(await api(), fx.model);
  });
  suiteTeardown(() => {
    if (saved === undefined) rmSync(taskFile(), { force: true });
    else writeFileSync(taskFile(), saved);
  });

  test('the cheap points arrive before the sensitivity probes, which run as a counted stage', async () => {
    const a = await api();
    writeTask({ sweep: { levels: [0.5], energies: [0.95], allocations: ['sensitivity', 'energy', 'uniform'] } });
    await vscode.workspace.getConfiguration('rankscope').update('cache.maxSizeMB', 0, vscode.ConfigurationTarget.Workspace);
    try {
      const seen: { stage: NonNullable<SweepProgress['stage']>; points: string[] }[] = [];
      const running = vscode.commands.executeCommand<number>('rankscope.showTradeoff', {});
      await waitFor('the sweep to start', () => a.tradeoff.running, 30_000);
      while (a.tradeoff.running) {
        const p = a.tradeoff.progress;
        if (p?.stage) seen.push({ stage: p.stage, points: a.tradeoff.points.map((x) => x.id) });
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(await running, 4);
      assert.ok(seen.length > 0, 'a probes stage was reported');
      // While the probes run, every point that needs none is already in the panel.
      for (const s of seen) assert.deepEqual(s.points.sort(), ['energy:0.5', 'energy:0.95', 'uniform:0.5'], `at probe ${s.stage.done}`);
      assert.match(seen[0].stage.label, /^sensitivity probes on all 128 samples$/);
      const total = seen[0].stage.total;
      assert.ok(total >= 5 && seen.every((s) => s.stage.total === total && s.stage.done <= total));
      assert.deepEqual(a.tradeoff.points.map((p) => p.id), ['energy:0.5', 'uniform:0.5', 'energy:0.95', 'sensitivity:0.5']);
      assert.equal(a.tradeoff.points.find((p) => p.id === 'energy:0.95')!.kind, 'energy', 'an energy threshold is not a budget allocation');
      assert.match(a.tradeoff.shown!.note!, /sensitivity probes: \d+ measured/);
    } finally {
      await vscode.workspace.getConfiguration('rankscope').update('cache.maxSizeMB', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('with a compressed model open it sweeps the model rankscope.json names, labels the baseline truthfully, and keeps every sweep', async () => {
    const a = await api();
    const compressed = await vscode.commands.executeCommand<string>('rankscope.compressModelToBudget', { budget: 0.5, allocation: 'uniform' });
    assert.equal(a.session.path, compressed);
    const compressedParams = a.session.totals()!.current;
    const spec = { levels: [0.3], allocations: ['energy'] };
    writeTask({ model: fx.model });

    // Scripted, no model given: the task file's model (the original), not the open compressed one.
    await vscode.commands.executeCommand('rankscope.showTradeoff', { spec });
    // −30 % of the original is bigger than the open model (−50 %); −30 % of the open one would be smaller.
    assert.ok(a.tradeoff.points.length === 1 && a.tradeoff.points[0].params > compressedParams, `${a.tradeoff.points[0]?.params} vs ${compressedParams}`);
    const first = a.tradeoff.shown!;
    assert.equal(first.model, fx.model);
    assert.equal(first.original!.params, fx.totalParams, 'the baseline is the original model');
    assert.equal(first.original!.compressedLayers, 0);
    assert.equal(first.original!.name, 'model.onnx');
    assert.equal(first.status, 'completed');

    // The compressed model, asked for: its baseline says it is already compressed.
    await vscode.commands.executeCommand('rankscope.showTradeoff', { spec, model: compressed });
    const second = a.tradeoff.shown!;
    assert.equal(second.model, compressed);
    assert.ok(second.original!.compressedLayers! > 0, 'the baseline is labelled as already compressed');
    assert.ok(second.original!.params < fx.totalParams);
    assert.ok(a.tradeoff.sweeps.includes(first) && a.tradeoff.sweeps.includes(second), 'the earlier sweep is kept');
    assert.notEqual(first.id, second.id);
    const kept = a.tradeoff.sweeps.length;

    // Both sets are stored, one file each, and the first is still whole and selectable.
    const files = readdirSync(a.tradeoff.storageDir).filter((f) => f.endsWith('.json'));
    for (const set of [first, second]) assert.ok(files.includes(`${set.id}.json`), `${set.title} stored`);
    const stored = JSON.parse(readFileSync(join(a.tradeoff.storageDir, `${first.id}.json`), 'utf8'));
    assert.equal(stored.model, fx.model);
    assert.equal(stored.points.length, first.points.length);
    a.tradeoff.select(first.id);
    assert.deepEqual(a.tradeoff.points.map((p) => p.id), first.points.map((p) => p.id));

    // Apply a point of the original's sweep while the compressed model is open: written next to the original, with the point's parameters.
    const point = a.tradeoff.points[0];
    const { file } = await a.tradeoff.apply(point.id);
    assert.equal(dirname(file), dirname(fx.model));
    assert.equal(a.session.path, file);
    assert.equal(a.session.totals()!.current, point.params);
    // Its MACs as the view plotted them (from the plan) are those measured on the written file.
    const measured = await waitFor('the MACs of the written file', () => a.session.path === file && a.session.macs);
    assert.ok(measured.ok && point.macs !== undefined && measured.total === point.macs, `${measured.ok && measured.total} vs ${point.macs}`);
    assert.ok(first.original!.macs! > point.macs!, 'the compressed point runs fewer MACs');

    // The same model + spec again re-measures that set (replaced in place), the other stays.
    await vscode.commands.executeCommand('rankscope.showTradeoff', { spec, model: fx.model });
    assert.equal(a.tradeoff.sweeps.length, kept);
    assert.equal(a.tradeoff.shown!.id, first.id);
  });

  test('sweep.methods [svd, whitened]: the sweep calibrates on the data, and each point says its method', async () => {
    const a = await api();
    writeTask({ model: fx.model, sweep: { levels: [0.5], allocations: ['energy'], methods: ['svd', 'whitened'] } });
    // −50 % energy and the default thresholds (90/95/99 %), each by both methods.
    assert.equal(await vscode.commands.executeCommand<number>('rankscope.showTradeoff', { model: fx.model }), 8);
    assert.equal(a.tradeoff.lastOutcome, 'completed');
    const plain = a.tradeoff.points.filter((p) => (p.method ?? 'svd') === 'svd');
    const whitened = a.tradeoff.points.filter((p) => p.method === 'whitened');
    assert.deepEqual(plain.map((p) => p.id).sort(), ['energy:0.5', 'energy:0.9', 'energy:0.95', 'energy:0.99']);
    assert.deepEqual(whitened.map((p) => p.id).sort(), plain.map((p) => `whitened:${p.id}`).sort());
    // The same ranks at the same level: only the factors differ.
    for (const p of plain) assert.equal(whitened.find((w) => w.id === `whitened:${p.id}`)!.params, p.params, p.id);
    assert.match(a.tradeoff.shown!.spec, /svd vs whitened SVD/);
    // Apply on a whitened point writes whitened factors (the method recorded in the model), a plain point plain SVD.
    for (const [id, method] of [['whitened:energy:0.5', 'whitened'], ['energy:0.5', METHOD]] as const) {
      const { file } = await a.tradeoff.apply(id);
      const entries = readEntries((await openOnnx(file)).proto);
      assert.ok(entries.length > 0 && entries.every((e) => e.method === method), `${id}: ${JSON.stringify(entries.map((e) => e.method))}`);
      assert.equal(a.session.totals()!.current, a.tradeoff.points.find((p) => p.id === id)!.params);
    }
  });
});
