import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { api, EXTENSION_ID } from './api';

suite('activation', () => {
  test('activates lazily and registers the tree within 150 ms of activate()', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const manifest = ext.packageJSON as { activationEvents: string[] };
    assert.ok(!manifest.activationEvents.includes('*'), 'no * activation');
    const a = await api();
    (globalThis as { rankscopeMetrics?: Record<string, number> }).rankscopeMetrics = { activationMs: a.activationMs };
    assert.ok(a.activationMs < 150, `tree registered after ${a.activationMs.toFixed(1)} ms`);
  });

  test('every contributed command is registered, in category Rankscope, without emojis', async () => {
    await api();
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const manifest = JSON.parse(readFileSync(join(ext.extensionPath, 'package.json'), 'utf8')) as {
      contributes: { commands: { command: string; title: string; category: string }[] };
    };
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of manifest.contributes.commands) {
      assert.ok(registered.has(c.command), `${c.command} is not registered`);
      assert.equal(c.category, 'Rankscope');
      assert.doesNotMatch(c.title, /\p{Extended_Pictographic}/u, `emoji in ${c.title}`);
    }
    for (const title of ['Open Model…', 'Open Sample Model', 'Compress Layers…', 'Compress Model to Budget…', 'Show Accuracy/Size Trade-off',
      'Fine-tune Compressed Model…', 'Configure Evaluation Data…', 'Export Report', 'Show Log', 'Check Fine-tuning Environment']) {
      assert.ok(manifest.contributes.commands.some((c) => c.title === title), `palette command '${title}' missing`);
    }
  });

  test('Show Log runs', async () => {
    await api();
    await vscode.commands.executeCommand('rankscope.showLog');
  });
});
