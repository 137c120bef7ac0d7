// The paths a person takes: the Compress Layer… QuickPick and output box accepted with the
// keyboard's Enter (the workbench's accept command), the spectrum panel's "Compress at this rank",
// the status bar, the sample model.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { acceptUntilDone, api, openAndSettle, workspaceDir } from './api';
import { fileHash, makeFixture, type Fixture } from './fixtures';

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

  test('Recompose to Dense from the tree asks for the file name like Compress does, proposing the next free one', async () => {
    const a = await api();
    const node = a.tree.nodeFor('encoder.layers.0.fc2')!; // compressed by the spectrum test above
    assert.ok(a.session.layer('encoder.layers.0.fc2')?.compressed);
    const stem = a.session.path!.replace(/\.onnx$/, '');
    // The previous test's "Show in Layers" moves the focus a moment later, which would close an input box.
    await new Promise((r) => setTimeout(r, 2000));
    let done = false;
    const pending = Promise.resolve(vscode.commands.executeCommand<string>('rankscope.recomposeToDense', node, [node])).finally(() => { done = true; });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(done, false, `it waits for the file name (returned ${done ? await pending : ''})`);
    const written = await acceptUntilDone(pending);
    assert.equal(written, `${stem}.dense.onnx`, 'Enter accepted the proposed name');
    assert.ok(existsSync(written));
  });

  test('Open Sample Model copies the sample into the workspace and opens the Transformer there; the install folder stays as shipped', async () => {
    const a = await api();
    const ext = vscode.extensions.getExtension('rankscope.rankscope')!;
    const bundled = join(ext.extensionPath, 'media', 'samples');
    const shipped = readdirSync(bundled).sort();
    const copy = join(workspaceDir(), 'rankscope-sample');
    const opened = await vscode.commands.executeCommand<string | undefined>('rankscope.openSampleModel');
    assert.equal(opened, join(copy, 'skeleton-transformer.onnx'), 'the model media/samples/README.md and the task file describe');
    assert.equal(a.session.path, opened);
    for (const f of ['skeleton-transformer.onnx', 'skeleton-actions.npz', 'rankscope.json']) assert.ok(existsSync(join(copy, f)), `${f} copied`);
    assert.equal(fileHash(join(copy, 'skeleton-transformer.onnx')), fileHash(join(bundled, 'skeleton-transformer.onnx')));
    // The copied task file: the same text (formatting and all) without the $schema that pointed into the source tree.
    const text = readFileSync(join(copy, 'rankscope.json'), 'utf8');
    assert.ok(!text.includes('$schema'));
    assert.equal(text, readFileSync(join(bundled, 'rankscope.json'), 'utf8').replace(/\n\s*"\$schema": [^\n]*/, ''));
    // Work on the sample lands next to the copy.
    // The largest factorizable layer: rank 4 fits it (the sample's first layers are 60×3).
    const layer = a.session.model!.layers.filter((l) => l.factorizable).reduce((x, y) => (y.params > x.params ? y : x)).name;
    const written = await vscode.commands.executeCommand<string>('rankscope.compressLayers', { layers: [layer], policy: { rank: 4 } });
    assert.equal(written, join(copy, 'skeleton-transformer.rankscope.onnx'));
    assert.deepEqual(readdirSync(bundled).sort(), shipped, 'nothing written into the extension\'s install folder');
    // Opening it again reuses the copy (the compressed model stays); another folder gets its own.
    assert.equal(await vscode.commands.executeCommand('rankscope.openSampleModel'), opened);
    assert.ok(existsSync(written));
    const elsewhere = mkdtempSync(join(tmpdir(), 'rankscope-sample-'));
    assert.equal(await vscode.commands.executeCommand('rankscope.openSampleModel', { folder: elsewhere }), join(elsewhere, 'rankscope-sample', 'skeleton-transformer.onnx'));
  });
});
