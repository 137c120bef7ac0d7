// The paths a person takes: the Compress Layer… QuickPick and output box accepted with the
// keyboard's Enter (the workbench's accept command), the spectrum panel's "Compress at this rank",
// the status bar, the sample model.
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { api, openAndSettle } from './api';
import { makeFixture, type Fixture } from './fixtures';

/** Presses Enter in whatever quick input is open until `pending` settles. */
async function acceptUntilDone<T>(pending: Thenable<T>, timeoutMs = 60_000): Promise<T> {
  let done = false;
  const result = Promise.resolve(pending).finally(() => { done = true; });
  const t0 = Date.now();
  while (!done && Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 400));
    if (!done) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
  }
  return result;
}

suite('driven like a person', () => {
  let fx: Fixture;
  suiteSetup(async () => {
    fx = makeFixture();
    await openAndSettle(await api(), fx.model);
  });

  test('status bar shows the parameters, then original → current after compression', async () => {
    const a = await api();
    assert.equal(a.statusBar.text, '$(symbol-structure) 33.4K params');
    assert.equal(a.statusBar.command, 'rankscope.layers.focus');
  });

  test('Compress Layer…: Enter on the first policy (energy 90 %) and on the proposed file name', async () => {
    const a = await api();
    const target = fx.layers.find((l) => l.name === 'encoder.layers.1.fc2')!;
    const node = a.tree.nodeFor(target.name)!;
    const written = await acceptUntilDone(vscode.commands.executeCommand<string>('rankscope.compressLayer', node, [node]));
    assert.equal(written, join(fx.dir, 'model.rankscope.onnx'));
    assert.equal(a.session.layer(target.name)?.compressed?.rank, target.r90, 'rank for 90 % energy, as numpy has it');
    assert.match(a.statusBar.text, /^\$\(symbol-structure\) 33\.4K → \d+(\.\d+)?K \(−\d+ %\)$/);
  });

  test('Spectrum panel "Compress at this rank" writes the model at that rank', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.openModel', fx.model);
    await vscode.commands.executeCommand('rankscope.showSpectrum', 'encoder.layers.0.fc2');
    const result = await a.spectrum.compressAtRank('encoder.layers.0.fc2', 4);
    assert.ok(existsSync(result.file));
    assert.equal(result.paramsBefore, 8192);
    assert.equal(result.paramsAfter, 4 * (64 + 128));
    assert.equal(a.session.layer('encoder.layers.0.fc2')?.compressed?.rank, 4);
    await assert.rejects(a.spectrum.compressAtRank('encoder.layers.0.fc2', 65), /exceeds min\(out, in\) = 64/);
  });

  test('Open Sample Model opens the bundled sample when there is one', async () => {
    const a = await api();
    const ext = vscode.extensions.getExtension('rankscope.rankscope')!;
    const dir = join(ext.extensionPath, 'media', 'samples');
    const sample = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()[0] : undefined;
    const opened = await vscode.commands.executeCommand<string | undefined>('rankscope.openSampleModel');
    if (sample) {
      assert.equal(opened, join(dir, sample));
      assert.ok(a.session.model!.layers.length > 0);
    } else {
      assert.equal(opened, undefined, 'no sample: a clear error, nothing opened');
    }
  });
});
