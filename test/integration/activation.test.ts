import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

suite('activation', () => {
  test('the extension is installed in development mode', () => {
    const ext = vscode.extensions.getExtension('rankscope.rankscope');
    assert.ok(ext, 'rankscope.rankscope not found');
  });
});
