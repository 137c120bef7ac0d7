// Issue 13 item 9: Configure Evaluation Data… checks the data against the model's inputs at once
// (nothing is written for data that does not fit), drops the fields that described the previous
// data, and edits rankscope.json in place: comments, order and formatting stay.
import * as assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { runPython } from '../helpers/python';
import { api, openAndSettle, workspaceDir } from './api';
import { makeFixture, type Fixture } from './fixtures';

// A hand-written task file: 4-space indent, comments, a field order of the user's own, and
// inputs/labels/ntu that name arrays of some earlier data.
const USER_TASK = `{
    // evaluation of my MLP
    "labels": "old_y",
    "inputs": { "x": "features" },
    "ntu": { "frames": 64 },
    "limit": 100,   // keep it quick
    "sweep": { "levels": [0.5],   "allocations": ["energy"] }
}
`;

suite('Configure Evaluation Data checks the data and keeps the file as written', () => {
  let fx: Fixture;
  const taskFile = () => join(workspaceDir(), 'rankscope.json');
  suiteSetup(async () => {
    fx = makeFixture();
    await openAndSettle(await api(), fx.model);
    // Data that does not fit the model (input x is (batch, 64), output 10 classes).
    runPython(String.raw`
import sys, numpy as np
d = sys.argv[1]
np.savez(d + "/narrow.npz", x_test=np.zeros((20, 7), np.float32), y_test=np.zeros(20, np.int64))
np.savez(d + "/onehot7.npz", x_test=np.zeros((20, 64), np.float32), y_test=np.eye(7, dtype=np.float32)[np.arange(20) % 7])`, [fx.dir]);
  });
  suiteTeardown(() => rmSync(taskFile(), { force: true }));

  test('a (20, 7) array for a (batch, 64) input is refused; rankscope.json is not touched', async () => {
    writeFileSync(taskFile(), USER_TASK);
    assert.equal(await vscode.commands.executeCommand('rankscope.configureEvalData', { data: join(fx.dir, 'narrow.npz') }), undefined);
    assert.equal(readFileSync(taskFile(), 'utf8'), USER_TASK);
  });

  test('one-hot labels with 7 classes for a 10-class model are refused', async () => {
    assert.equal(await vscode.commands.executeCommand('rankscope.configureEvalData', { data: join(fx.dir, 'onehot7.npz') }), undefined);
    assert.equal(readFileSync(taskFile(), 'utf8'), USER_TASK);
  });

  test('data that fits: recorded with the arrays it was checked with; stale fields gone; comments and formatting kept', async () => {
    assert.equal(await vscode.commands.executeCommand('rankscope.configureEvalData', { data: fx.data }), taskFile());
    const text = readFileSync(taskFile(), 'utf8');
    for (const kept of ['    // evaluation of my MLP\n', '    "limit": 100,   // keep it quick\n', '    "sweep": { "levels": [0.5],   "allocations": ["energy"] }']) {
      assert.ok(text.includes(kept), `kept as written: ${JSON.stringify(kept)}\n${text}`);
    }
    assert.ok(!text.includes('"ntu"'), 'ntu belonged to the NTU preset of earlier data');
    const task = JSON.parse(text.replace(/\/\/[^\n]*/g, '')) as Record<string, unknown>;
    assert.equal(task.data, fx.data);
    assert.equal(task.preset, 'none');
    assert.deepEqual(task.inputs, { x: 'x_test' }, 'the stale "features" mapping is replaced by the one the check used');
    assert.equal(task.labels, 'y_test');
    assert.match(text, /\n {4}"data": /, 'new fields take the file\'s 4-space indent');
  });
});
