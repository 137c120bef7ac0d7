import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { api, openAndSettle, waitFor, workspaceDir } from './api';
import { makeFixture } from './fixtures';

const config = () => vscode.workspace.getConfiguration('rankscope');

suite('settings', () => {
  suiteTeardown(async () => {
    for (const key of ['cache.location', 'cache.maxSizeMB', 'layers.sortBy', 'compress.defaultEnergy', 'python.interpreter']) {
      await config().update(key, undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  test('declares the documented settings with their defaults', () => {
    const defaults: Record<string, unknown> = {
      'python.interpreter': '', device: 'auto', 'compress.defaultEnergy': 0.95, 'eval.batchSize': 64,
      'eval.executionProvider': 'cpu', 'cache.location': '', 'cache.maxSizeMB': 512, 'layers.sortBy': 'module',
      'finetune.processes': 1, 'finetune.gpus': '',
    };
    for (const [key, value] of Object.entries(defaults)) assert.deepEqual(config().inspect(key)?.defaultValue, value, key);
  });

  test('rankscope.json gets its schema through jsonValidation', () => {
    const ext = vscode.extensions.getExtension('rankscope.rankscope')!;
    const v = (ext.packageJSON as { contributes: { jsonValidation: { fileMatch: string[]; url: string }[] } }).contributes.jsonValidation[0]!;
    assert.ok(v.fileMatch.includes('rankscope.json'));
    assert.equal(v.url, './schemas/rankscope.schema.json');
  });

  test('cache.location receives the spectrum cache; cache.maxSizeMB 0 turns it off', async () => {
    const a = await api();
    const dir = mkdtempSync(join(tmpdir(), 'rankscope-cache-'));
    await config().update('cache.location', dir, vscode.ConfigurationTarget.Workspace);
    await openAndSettle(a, makeFixture().model);
    assert.equal(a.session.cacheDir(), dir);
    await waitFor('cache files', () => existsSync(dir) && readdirSync(dir, { recursive: true }).length > 0);
    await config().update('cache.maxSizeMB', 0, vscode.ConfigurationTarget.Workspace);
    assert.equal(a.session.cacheDir(), undefined);
  });

  test('Sort Layers… stores the order in the user\'s settings, not in the workspace\'s .vscode/settings.json', async () => {
    const a = await api();
    await config().update('layers.sortBy', undefined, vscode.ConfigurationTarget.Workspace);
    const workspaceSettings = join(workspaceDir(), '.vscode', 'settings.json');
    const before = existsSync(workspaceSettings) ? readFileSync(workspaceSettings, 'utf8') : undefined;
    try {
      assert.equal(await vscode.commands.executeCommand('rankscope.sortLayers', 'params'), 'params');
      await waitFor('flat list', () => a.tree.sortOrder === 'params');
      assert.equal(config().inspect('layers.sortBy')?.globalValue, 'params');
      assert.equal(config().inspect('layers.sortBy')?.workspaceValue, undefined);
      assert.equal(existsSync(workspaceSettings) ? readFileSync(workspaceSettings, 'utf8') : undefined, before, '.vscode/settings.json changed');
    } finally {
      await config().update('layers.sortBy', undefined, vscode.ConfigurationTarget.Global);
    }
    await waitFor('module order again', () => a.tree.sortOrder === 'module');
  });

  test('layers.sortBy drives the tree', async () => {
    const a = await api();
    await config().update('layers.sortBy', 'params', vscode.ConfigurationTarget.Workspace);
    await waitFor('flat list', () => a.tree.sortOrder === 'params' && a.tree.getChildren(a.tree.getChildren()[0]).every((n) => n.kind === 'layer'));
    await config().update('layers.sortBy', 'module', vscode.ConfigurationTarget.Workspace);
    await waitFor('hierarchy', () => a.tree.sortOrder === 'module' && a.tree.getChildren(a.tree.getChildren()[0]).some((n) => n.kind === 'group'));
  });
});
