// Issue 13 items 1 and 2 (and the hidden work folders of item 11) in a real VS Code: fine-tuning
// never replaces an earlier result; the interpreter is discovered (first with torch) before any
// prompt, and its failure offers the setting that fixes it.
import * as assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { errorActions } from '../../src/extension/log';
import { pythonInterpreter } from '../../src/extension/python';
import { api, openAndSettle } from './api';
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
