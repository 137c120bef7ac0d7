// Issue 13 items 1 and 2 (and the hidden work folders of item 11) in a real VS Code: fine-tuning
// never replaces an earlier result; the interpreter is discovered (first with torch) before any
// prompt, and its failure offers the setting that fixes it. Items 7 and 8: the view numbers epochs
// as the worker does and starts with the before point, every figure names its split, a cancelled
// run shows what was measured (not 0 %), Resume Fine-tuning… continues a checkpoint, and a failed
// run shows its failure in a cleared view.
import * as assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { runPython } from '../helpers/python';
import { errorActions } from '../../src/extension/log';
import { pythonInterpreter } from '../../src/extension/python';
import { api, openAndSettle, waitFor } from './api';
import { fileHash, makeFixture, type Fixture } from './fixtures';

const SYSTEM = '/usr/bin/python3';
const config = () => vscode.workspace.getConfiguration('rankscope');

/** `<dir>/bin/python3`: the system Python with -S (no site-packages, so no torch), like a bare venv. */
function fakeVenv(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-venv-'));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'python3'), `#!/bin/sh\nexec ${SYSTEM} -S "$@"\n`);
  chmodSync(join(dir, 'bin', 'python3'), 0o755);
  return dir;
}

interface Report { ok: boolean; python: string; problems: { what: string; fix: string }[]; discovery?: { probes: { source: string; executable?: string; rejected?: string }[] } }

suite('fine-tuning: Python discovery and output names', () => {
  let fx: Fixture;
  let venv: string;
  suiteSetup(async () => {
    fx = makeFixture();
    venv = fakeVenv();
    await openAndSettle(await api(), fx.model);
  });
  teardown(async () => {
    await config().update('python.interpreter', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('a setting and a PATH whose python3 has no torch: /usr/bin/python3 is chosen, the rejections say why', async () => {
    await config().update('python.interpreter', join(venv, 'bin', 'python3'), vscode.ConfigurationTarget.Workspace);
    const report = await vscode.commands.executeCommand<Report>('rankscope.checkFinetuneEnvironment',
      { discovery: { env: { PATH: `${join(venv, 'bin')}:/usr/bin:/bin`, VIRTUAL_ENV: venv } } });
    assert.equal(report.python, SYSTEM);
    assert.ok(report.ok, JSON.stringify(report.problems));
    const first = report.discovery!.probes[0]!;
    assert.equal(first.source, 'setting rankscope.python.interpreter');
    assert.match(first.rejected ?? '', /no PyTorch\/numpy/);
  });

  test('no Python with torch: the error names rankscope.python.interpreter and its button opens that setting', async () => {
    const e = await pythonInterpreter({ env: { PATH: join(venv, 'bin') }, systemPythons: [] }).then(() => undefined, (x: unknown) => x as Error & { hint?: string });
    assert.ok(e, 'discovery should fail');
    assert.match(`${e.message} ${e.hint}`, /rankscope\.python\.interpreter/);
    assert.doesNotMatch(`${e.message} ${e.hint}`, /pythonPath/);
    assert.match(e.message, /python3 \(python3 on PATH: no PyTorch/);
    const [fix, showLog] = errorActions(e);
    assert.deepEqual(fix, { title: 'Open Settings', command: 'workbench.action.openSettings', args: ['rankscope.python.interpreter'] });
    assert.equal(showLog?.title, 'Show Log');
    await vscode.commands.executeCommand(fix!.command, ...fix!.args!);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(vscode.window.tabGroups.activeTabGroup.activeTab?.label, 'Settings');
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  test('no Python with torch: Fine-tune fails at once, before any prompt', async () => {
    // Before the fix the epochs prompt came first: the command would wait here for an answer.
    const run = vscode.commands.executeCommand('rankscope.finetune', { discovery: { env: { PATH: join(venv, 'bin') }, systemPythons: [] } });
    const outcome = await Promise.race([run.then(() => 'returned'), new Promise((r) => setTimeout(() => r('waiting for input'), 30_000))]);
    if (outcome !== 'returned') await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
    assert.equal(outcome, 'returned');
  });

  test('a second fine-tune writes model.finetuned-2.onnx; the first result is untouched; no work folder in the user\'s folder', async function () {
    this.timeout(300_000);
    const options = { model: fx.model, data: fx.data, preset: null, epochs: 1, lr: 1e-3, batchSize: 64, device: 'cpu', distill: false };
    const first = await vscode.commands.executeCommand<{ status: string; output?: string }>('rankscope.finetune', options);
    assert.equal(first?.status, 'completed');
    assert.equal(first.output, join(fx.dir, 'model.finetuned.onnx'));
    const hash = fileHash(first.output);
    const second = await vscode.commands.executeCommand<{ status: string; output?: string }>('rankscope.finetune', options);
    assert.equal(second?.status, 'completed');
    assert.equal(second.output, join(fx.dir, 'model.finetuned-2.onnx'));
    assert.equal(fileHash(first.output), hash, 'the first result was overwritten');
    assert.ok(existsSync(second.output));
    assert.deepEqual(readdirSync(fx.dir).filter((f) => f.startsWith('.')), [], 'hidden work folders next to the model');
  });
});

interface RunResult {
  status: string;
  output?: string;
  workDir: string;
  checkpoint: string | null;
  summary: { valAccuracyBest: number | null; testAccuracy: number | null; bestEpoch: number | null; epochs: { epoch: number }[]; splits: { validation: { source: string; by?: string }; test: { samples?: number } } };
}

suite('fine-tuning: epochs, splits, cancel, resume, failure (issue 13 items 7 and 8)', () => {
  let fx: Fixture;
  const options = (extra: Record<string, unknown> = {}) => ({ model: fx.model, data: fx.data, preset: null, epochs: 1, lr: 1e-3, batchSize: 32, device: 'cpu', distill: false, ...extra });
  suiteSetup(async () => {
    fx = makeFixture();
    await openAndSettle(await api(), fx.model);
  });

  test('validation is held out of x_train, test is x_test scored once; the view starts at the before point (epoch 0) and numbers epochs 1 … N', async function () {
    this.timeout(300_000);
    const a = await api();
    const r = await vscode.commands.executeCommand<RunResult>('rankscope.finetune', options({ epochs: 2, out: join(fx.dir, 'splits.onnx') }));
    assert.equal(r.status, 'completed');
    assert.deepEqual([r.summary.splits.validation.source, r.summary.splits.validation.by], ['held-out', 'stratified']);
    assert.equal(r.summary.splits.test.samples, 128);
    assert.equal(typeof r.summary.testAccuracy, 'number');
    const view = a.finetune.current;
    assert.deepEqual(view.epochs.map((e) => e.epoch), [0, 1, 2]);
    assert.match(view.run!.validation!, /^validation: \d+ samples held out of x_train at random, stratified by class/);
    assert.equal(view.run!.test, 'test: x_test/y_test of data.npz (128 samples), scored once with the best weights');
    const epochsSeen = [...new Set(view.steps.map((s) => s.epoch))];
    assert.deepEqual(epochsSeen, [1, 2]);
    assert.equal(view.steps.at(-1)!.step, 2 * view.run!.stepsPerEpoch!, 'the last step is steps done = epochs × steps per epoch');
    assert.equal(view.summary!.testAccuracy, r.summary.testAccuracy);
  });

  test('rankscope.finetune.processes 2: the worker trains under torchrun (gloo); the view names the processes and the global batch', async function () {
    this.timeout(300_000);
    const a = await api();
    await config().update('finetune.processes', 2, vscode.ConfigurationTarget.Workspace);
    try {
      const r = await vscode.commands.executeCommand<RunResult & { summary: { processes: unknown } }>('rankscope.finetune', options({ out: join(fx.dir, 'ddp.onnx') }));
      assert.equal(r.status, 'completed');
      assert.ok(r.output && existsSync(r.output));
      assert.deepEqual(r.summary.processes, { worldSize: 2, backend: 'gloo', globalBatch: 32, perProcessBatch: 16 });
      assert.equal(a.finetune.current.run!.device, 'cpu × 2 processes (gloo), global batch 32 = 2 × 16');
      // A batch that does not divide over the processes is refused before anything starts (a notification, nothing returned).
      assert.equal(await vscode.commands.executeCommand('rankscope.finetune', options({ batchSize: 33, out: join(fx.dir, 'odd.onnx') })), undefined);
      assert.match(a.finetune.current.error ?? '', /--batch-size 33 is the global batch: it must divide evenly over 2 processes/);
      assert.equal(existsSync(join(fx.dir, 'odd.onnx')), false);
    } finally {
      await config().update('finetune.processes', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('cancelled before anything was measured: the view has no figure, not 0 %', async function () {
    this.timeout(120_000);
    const a = await api();
    const run = vscode.commands.executeCommand<RunResult | undefined>('rankscope.finetune', options({ epochs: 50, out: join(fx.dir, 'early.onnx') }));
    await waitFor('the run to start', () => a.finetune.current.status === 'running' && a.finetune.cancelRun !== undefined);
    a.finetune.cancelRun!();
    await run.then(() => undefined, () => undefined);
    const view = a.finetune.current;
    assert.equal(view.status, 'cancelled');
    assert.equal(view.summary!.bestAccuracy, null, 'before the fix: 0 (shown as 0.00 %)');
    assert.equal(view.summary!.finalAccuracy, null);
    assert.equal(view.summary!.testAccuracy, null);
  });

  test('Resume Fine-tuning… continues the cancelled run of the open model from its checkpoint to the end', async function () {
    this.timeout(300_000);
    const a = await api();
    const out = join(fx.dir, 'resumed.onnx');
    // Enough epochs that the cancel lands in training: the fixture's epochs take milliseconds, and
    // with 3 the run had sometimes finished (and was writing back) by the time the cancel arrived.
    const EPOCHS = 30;
    const run = vscode.commands.executeCommand<RunResult>('rankscope.finetune', options({ epochs: EPOCHS, batchSize: 8, out }));
    await waitFor('the first epoch', () => a.finetune.current.epochs.some((e) => e.epoch === 1), 120_000);
    a.finetune.cancelRun!();
    const first = await run;
    assert.ok(first, `the cancelled run returned nothing: view ${a.finetune.current.status}, error ${a.finetune.current.error}`);
    assert.equal(first.status, 'cancelled');
    assert.ok(first.checkpoint && existsSync(first.checkpoint));
    assert.ok(!existsSync(out));
    const resumed = await vscode.commands.executeCommand<RunResult>('rankscope.resumeFinetune', { model: fx.model });
    assert.equal(resumed.status, 'completed');
    assert.equal(resumed.output, out, 'the planned output, free since the cancel');
    assert.equal(resumed.workDir, first.workDir);
    const numbered = (from: number) => Array.from({ length: EPOCHS + 1 - from }, (_, i) => from + i);
    assert.deepEqual(resumed.summary.epochs.map((e) => e.epoch), numbered(1));
    const view = a.finetune.current;
    const done = Number(/^resuming: (\d+) of 30 epochs/.exec(view.run!.resumed ?? '')?.[1]);
    assert.ok(done >= 1 && done < EPOCHS, `resumed after ${view.run!.resumed}`);
    assert.deepEqual(view.epochs.map((e) => e.epoch), numbered(0), 'the earlier epochs stay on the chart');
    // Nothing left to resume for this model: the command reports NOT_FOUND (a notification) and runs nothing.
    const runs = a.finetune.current;
    assert.equal(await vscode.commands.executeCommand('rankscope.resumeFinetune', { model: fx.model }), undefined);
    assert.equal(a.finetune.current, runs, 'no new run started');
  });

  test('a failed run clears the previous curves and shows its failure in the view', async function () {
    this.timeout(120_000);
    const a = await api();
    assert.ok(a.finetune.current.steps.length > 0, 'the previous run left curves');
    const bad = join(fx.dir, 'bad.npz');
    runPython(`import numpy as np, sys
np.savez(sys.argv[1], x_train=np.zeros((40, 23), np.float32), y_train=np.zeros(40, np.int64), x_test=np.zeros((8, 23), np.float32), y_test=np.zeros(8, np.int64))`, [bad]);
    // The command reports the failure (a notification) and returns nothing.
    assert.equal(await vscode.commands.executeCommand('rankscope.finetune', options({ data: bad, out: join(fx.dir, 'bad.onnx') })), undefined);
    const view = a.finetune.current;
    assert.equal(view.status, 'failed');
    assert.match(view.error ?? '', /x_train .*\(40, 23\)/);
    assert.deepEqual([view.steps.length, view.epochs.length], [0, 0], 'before the fix: the previous run\'s curves');
    assert.equal(view.run!.output, join(fx.dir, 'bad.onnx'));
  });
});
