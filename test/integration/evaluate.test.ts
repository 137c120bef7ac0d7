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
    const result = await vscode.commands.executeCommand<{ status: string; output?: string; summary: { accuracyBefore: number; accuracyAfter: number } }>(
      'rankscope.finetune', { model: compressed, data: fx.data, preset: null, epochs: 2, lr: 1e-3, batchSize: 32, device: 'cpu', distill: false, out },
    );
    assert.equal(result?.status, 'completed');
    assert.equal(result.output, out);
    assert.ok(existsSync(out));
    assert.ok(result.summary.accuracyAfter >= result.summary.accuracyBefore, `accuracy ${result.summary.accuracyBefore} → ${result.summary.accuracyAfter}`);
    const view = a.finetune.current;
    assert.equal(view.status, 'completed');
    assert.ok(view.steps.length > 0 && view.epochs.length === 2, `${view.steps.length} steps, ${view.epochs.length} epochs drawn`);
    await waitFor('fine-tune webview ready', () => a.finetune.webviewReady);
  });
});
