// Fine-tune on a PyTorch checkpoint in a real VS Code (issue 17): the command takes the .pt, its
// factors file and the factory that builds the user's nn.Module (test-local code in
// test/unit/worker/factory), writes the next free model.finetuned.pt, and remembers the factory:
// the next run's factory prompts are prefilled with it (accepted here with Enter).
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { runPython } from '../helpers/python';
import { acceptUntilDone } from './api';
import { fileHash } from './fixtures';

const ROOT = join(__dirname, '..', '..', '..'); // from out/test/integration
const FACTORY_PATH = join(ROOT, 'test', 'unit', 'worker', 'factory');

suite('fine-tuning a PyTorch checkpoint', () => {
  let dir: string;
  suiteSetup(function () {
    this.timeout(120_000);
    dir = mkdtempSync(join(tmpdir(), 'rankscope-it-module-'));
    runPython(`import runpy, sys; script = sys.argv[2]; sys.argv = [script, sys.argv[1]]; runpy.run_path(script, run_name='__main__')`,
      [dir, join(ROOT, 'test', 'unit', 'worker', 'module_fixture.py')]);
    const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'compress', join(dir, 'model.pt'), '-o', join(dir, 'model.lowrank.safetensors'),
      '--layers', 'tconv,fc', '--rank', '2', '--no-cache'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  test('a .pt with its factors and factory writes model.finetuned.pt; the factory is proposed the next time', async function () {
    this.timeout(300_000);
    const model = join(dir, 'model.pt');
    const hash = fileHash(model);
    const options = { model, data: join(dir, 'data.npz'), preset: null, epochs: 1, lr: 3e-3, batchSize: 32, device: 'cpu', distill: true };
    const first = await vscode.commands.executeCommand<{ status: string; output?: string; summary: { teacher: boolean } }>('rankscope.finetune',
      { ...options, factors: join(dir, 'model.lowrank.safetensors'), factory: { factory: 'skel.models:build', path: FACTORY_PATH } });
    assert.equal(first?.status, 'completed');
    assert.equal(first.output, join(dir, 'model.finetuned.pt'));
    assert.equal(first.summary.teacher, true, 'distilled from the checkpoint itself');
    // No factory given: its two input boxes come prefilled with the remembered one (the factors file is the sibling).
    const second = await acceptUntilDone(vscode.commands.executeCommand<{ status: string; output?: string }>('rankscope.finetune', { ...options, distill: false }), 120_000);
    assert.equal(second?.status, 'completed');
    assert.equal(second.output, join(dir, 'model.finetuned-2.pt'));
    assert.equal(fileHash(model), hash, 'the checkpoint is unchanged');
    assert.ok(existsSync(first.output));
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'the work folders are in the extension storage');
  });
});
