import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { testPython } from '../helpers/python';
import { api, openAndSettle, waitFor, workspaceDir } from './api';
import { makeFixture, type Fixture } from './fixtures';

suite('evaluation, trade-off and fine-tuning', () => {
  let fx: Fixture;
  const taskFile = () => join(workspaceDir(), 'rankscope.json');
  suiteSetup(async () => {
    fx = makeFixture();
    await openAndSettle(await api(), fx.model);
  });
  suiteTeardown(async () => {
    await vscode.workspace.getConfiguration('rankscope').update('python.interpreter', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('Configure Evaluation Data records the data in rankscope.json, keeping other fields', async () => {
    writeFileSync(taskFile(), JSON.stringify({ inputs: { x: 'x_test' }, labels: 'y_test', latency: false }));
    const written = await vscode.commands.executeCommand<string>('rankscope.configureEvalData', { data: fx.data });
    assert.equal(written, taskFile());
    const task = JSON.parse(readFileSync(taskFile(), 'utf8'));
    assert.equal(task.data, fx.data);
    assert.equal(task.preset, 'none', 'x is (N, 64): not NTU');
    assert.deepEqual(task.inputs, { x: 'x_test' });
    assert.equal(task.labels, 'y_test');
  });

  test('Show Trade-off sweeps with ONNX Runtime: the original scores 100 % on its own labels, points stream in', async () => {
    const a = await api();
    const task = JSON.parse(readFileSync(taskFile(), 'utf8'));
    writeFileSync(taskFile(), JSON.stringify({ ...task, sweep: { levels: [0.5], allocations: ['energy', 'uniform'], energies: [0.95] } }));
    const count = await vscode.commands.executeCommand<number>('rankscope.showTradeoff', {});
    assert.equal(count, 3, 'two budget points (energy, uniform) and one energy point');
    for (const p of a.tradeoff.points) {
      assert.ok(p.accuracy >= 0 && p.accuracy <= 1, `${p.label}: accuracy ${p.accuracy}`);
      assert.ok(p.params < fx.totalParams, `${p.label} is smaller`);
      assert.ok(p.fileSize > 0);
    }
    assert.deepEqual([...new Set(a.tradeoff.points.map((p) => p.allocation))].sort(), ['energy', 'uniform']);
    await waitFor('trade-off webview ready', () => a.tradeoff.webviewReady);
    // Apply a point: its plan is written as a new model and opened.
    const point = a.tradeoff.points.find((p) => p.label.includes('50'))!;
    const { file } = await a.tradeoff.apply(point.id);
    assert.ok(existsSync(file));
    assert.equal(a.session.path, file);
    assert.equal(a.session.totals()!.current, point.params, 'the written model has the point\'s parameters');
  });

  test('Cancel stops a running sweep: fewer points, outcome cancelled, not failed', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.openModel', fx.model);
    // Slow points (timed latency runs, no point cache) so the cancel lands mid-sweep.
    const task = JSON.parse(readFileSync(taskFile(), 'utf8'));
    writeFileSync(taskFile(), JSON.stringify({ ...task, latency: { warmup: 5, runs: 400 } }));
    await vscode.workspace.getConfiguration('rankscope').update('cache.maxSizeMB', 0, vscode.ConfigurationTarget.Workspace);
    const spec = { levels: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], allocations: ['energy', 'uniform'] };
    try {
      const running = vscode.commands.executeCommand<number>('rankscope.showTradeoff', { spec });
      await waitFor('first point of the new sweep', () => a.tradeoff.running && a.tradeoff.points.length >= 1, 60_000);
      a.tradeoff.cancel();
      await running;
      assert.equal(a.tradeoff.lastOutcome, 'cancelled');
      assert.ok(a.tradeoff.points.length < 16, `${a.tradeoff.points.length} of 16 points`);
      assert.equal(a.tradeoff.running, false);
    } finally {
      writeFileSync(taskFile(), JSON.stringify(task));
      await vscode.workspace.getConfiguration('rankscope').update('cache.maxSizeMB', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('Check Fine-tuning Environment uses the interpreter setting and finds PyTorch', async () => {
    await vscode.workspace.getConfiguration('rankscope').update('python.interpreter', testPython(), vscode.ConfigurationTarget.Workspace);
    const report = await vscode.commands.executeCommand<{ ok: boolean; python: string; hello?: { torch: string } }>('rankscope.checkFinetuneEnvironment');
    assert.equal(report.python, testPython());
    assert.ok(report.ok, 'environment ok');
    assert.match(report.hello!.torch, /^\d+\.\d+/);
  });

  test('Fine-tune runs the PyTorch worker on the compressed model and writes a fine-tuned ONNX', async function () {
    this.timeout(300_000);
    const a = await api();
    await vscode.commands.executeCommand('rankscope.openModel', fx.model);
    const compressed = await vscode.commands.executeCommand<string>('rankscope.compressModelToBudget', { budget: 0.6, allocation: 'uniform' });
    const out = join(fx.dir, 'model.finetuned.onnx');
    const result = await vscode.commands.executeCommand<{ status: string; output?: string; summary: { valAccuracyBefore: number; valAccuracyBest: number } }>(
      'rankscope.finetune', { model: compressed, data: fx.data, preset: null, epochs: 2, lr: 1e-3, batchSize: 32, device: 'cpu', distill: false, out },
    );
    assert.equal(result?.status, 'completed');
    assert.equal(result.output, out);
    assert.ok(existsSync(out));
    assert.ok(result.summary.valAccuracyBest >= result.summary.valAccuracyBefore, `validation accuracy ${result.summary.valAccuracyBefore} → ${result.summary.valAccuracyBest}`);
    const view = a.finetune.current;
    assert.equal(view.status, 'completed');
    // The before point (epoch 0) and the two epochs.
    assert.ok(view.steps.length > 0 && view.epochs.length === 3, `${view.steps.length} steps, ${view.epochs.length} epochs drawn`);
    await waitFor('fine-tune webview ready', () => a.finetune.webviewReady);
  });

  test('the fine-tune view\'s Cancel stops the worker; the run ends cancelled with a checkpoint', async function () {
    this.timeout(300_000);
    const a = await api();
    const compressed = a.session.path!;
    const run = vscode.commands.executeCommand<{ status: string; checkpoint: string | null } | undefined>(
      'rankscope.finetune', { model: compressed, data: fx.data, preset: null, epochs: 200, lr: 1e-3, batchSize: 8, device: 'cpu', distill: false, out: join(fx.dir, 'cancelled.onnx') },
    );
    await waitFor('training steps', () => a.finetune.current.status === 'running' && a.finetune.current.steps.length > 0, 120_000);
    a.finetune.cancelRun!();
    const result = await run;
    assert.equal(a.finetune.current.status, 'cancelled');
    if (result) assert.equal(result.status, 'cancelled');
    assert.ok(!existsSync(join(fx.dir, 'cancelled.onnx')), 'no output from a cancelled run');
  });
});
