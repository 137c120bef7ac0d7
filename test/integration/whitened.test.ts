// Whitened factorization in the editor: with evaluation data in rankscope.json, Compress Model to
// Budget… offers the method and writes a model that records it; the spectrum panel shows the
// focused layer's whitened spectrum beside the plain one.
import * as assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { openOnnx } from '../../src/core/formats/onnx';
import { readEntries } from '../../src/core/compress/metadata';
import { api, openAndSettle } from './api';
import { makeFixture, type Fixture } from './fixtures';

suite('whitened factorization in the editor', () => {
  let fx: Fixture;
  suiteSetup(async () => {
    fx = makeFixture();
    writeFileSync(join(fx.dir, 'rankscope.json'), JSON.stringify({ data: 'data.npz', inputs: { x: 'x_train' }, labels: 'y_train' }));
    await openAndSettle(await api(), fx.model);
  });

  test('Compress Model to Budget with the whitened method calibrates and records method and calibration hash', async () => {
    const written = await vscode.commands.executeCommand<string>('rankscope.compressModelToBudget', { budget: 0.5, method: 'whitened' });
    assert.ok(written && existsSync(written));
    const entries = readEntries((await openOnnx(written)).proto);
    assert.ok(entries.length > 0);
    for (const e of entries) {
      assert.equal(e.method, 'whitened');
      assert.match(e.calibration!.hash, /^[0-9a-f]{40}$/);
      assert.equal(e.calibration!.samples, 256);
    }
  });

  test('the spectrum panel shows the whitened spectrum beside the plain one', async () => {
    const a = await api();
    await openAndSettle(a, fx.model);
    await a.spectrum.show(['encoder.layers.0.fc2']);
    await a.spectrum.whitenedDone;
    const names = a.spectrum.current!.series.map((s) => s.layer);
    assert.deepEqual(names, ['encoder.layers.0.fc2', 'encoder.layers.0.fc2 · whitened']);
    const whitened = a.spectrum.current!.series[1]!;
    assert.equal(whitened.factorizable, false);
    assert.equal(whitened.singularValues.length, 64);
  });
});
