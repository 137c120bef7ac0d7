import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { api, item, layerNodes, openAndSettle, waitFor } from './api';
import { makeFixture, type Fixture } from './fixtures';

/** `8192` → `8.19K`, written out here rather than taken from the code under test. */
const counts: Record<number, string> = { 8192: '8.19K', 640: '640' };

suite('Layers tree', () => {
  let fx: Fixture;
  suiteSetup(async () => {
    fx = makeFixture();
    await vscode.workspace.getConfiguration('rankscope').update('layers.sortBy', undefined, vscode.ConfigurationTarget.Workspace);
  });

  test('welcome state: no model, the modelOpen context is off', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.closeModel');
    assert.equal(a.session.model, undefined);
    assert.deepEqual(a.tree.getChildren(), []);
  });

  test('shows the fixture: model node with totals, module hierarchy, one item per layer', async () => {
    const a = await api();
    await openAndSettle(a, fx.model);
    const [root] = a.tree.getChildren();
    assert.equal(root?.kind, 'model');
    const rootItem = item(a, root!);
    assert.equal(rootItem.label, 'model.onnx');
    assert.equal(rootItem.description, '33.4K params');
    assert.equal(a.session.totals()!.current, fx.totalParams);
    const top = a.tree.getChildren(root).map((n) => item(a, n).label);
    assert.deepEqual(top, ['encoder', 'head']);
    const encoder = a.tree.getChildren(root)[0]!;
    assert.deepEqual(a.tree.getChildren(encoder).map((n) => item(a, n).label), ['layers.0', 'layers.1']);
    const layers = layerNodes(a);
    assert.deepEqual(layers.map((n) => n.layer.name), fx.layers.map((l) => l.name));
    assert.deepEqual(layers.map((n) => item(a, n).label), ['fc1', 'fc2', 'fc1', 'fc2', 'head']);
  });

  test('layer descriptions are `out×in · params · r95 k` with k from numpy', async () => {
    const a = await api();
    for (const expected of fx.layers) {
      const node = a.tree.nodeFor(expected.name)!;
      const ti = item(a, node);
      assert.equal(ti.description, `${expected.shape[0]}×${expected.shape[1]} · ${counts[expected.params]} · r95 ${expected.r95}`, expected.name);
      assert.equal(ti.contextValue, 'layer+factorizable');
      const tip = (ti.tooltip as vscode.MarkdownString).value;
      assert.match(tip, new RegExp(`${expected.r90} / ${expected.r95} / ${expected.r99}`), `tooltip energy ranks of ${expected.name}`);
      assert.match(tip, /!\[spectrum of /, 'tooltip has the spectrum image');
      // An MLP on one vector per sample applies each matrix once: MACs = out × in = its parameters.
      await waitFor('the MACs measurement', () => a.session.macs);
      assert.ok((item(a, node).tooltip as vscode.MarkdownString).value.includes(`| MACs per sample | ${counts[expected.params]} (`), `tooltip MACs of ${expected.name}`);
      const icon = ti.iconPath as { light: vscode.Uri; dark: vscode.Uri };
      assert.ok(icon.light instanceof vscode.Uri && icon.light.fsPath.endsWith('-icon-light.svg'), 'sparkline icon');
      assert.match((await vscode.workspace.fs.readFile(icon.dark)).toString(), /^<svg[^>]*><polyline points="[\d., ]+"/);
    }
  });

  test('sorting: by parameters and by compressibility give flat lists in the right order', async () => {
    const a = await api();
    const names = () => a.tree.getChildren(a.tree.getChildren()[0]).map((n) => (n.kind === 'layer' ? n.layer.name : `group:${n.kind}`));
    assert.equal(await vscode.commands.executeCommand('rankscope.sortLayers', 'params'), 'params');
    await waitFor('flat list', () => names().every((n) => !n.startsWith('group:')));
    const byParams = [...fx.layers].sort((x, y) => y.params - x.params || x.name.localeCompare(y.name)).map((l) => l.name);
    assert.deepEqual(names(), byParams);
    await vscode.commands.executeCommand('rankscope.sortLayers', 'compressibility');
    // Saved at 95 % energy: params − r95·(out + in), computed from numpy's ranks.
    const saved = (l: Fixture['layers'][number]) => l.params - l.r95 * (l.shape[0] + l.shape[1]);
    const byGain = [...fx.layers].sort((x, y) => saved(y) - saved(x) || x.name.localeCompare(y.name)).map((l) => l.name);
    await waitFor('compressibility order', () => JSON.stringify(names()) === JSON.stringify(byGain) || undefined, 5000)
      .catch(() => assert.deepEqual(names(), byGain));
    await vscode.commands.executeCommand('rankscope.sortLayers', 'module');
    await waitFor('hierarchy', () => names().some((n) => n.startsWith('group:')));
  });

  test('Show in Layers selects the layer; Copy Name copies it', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.showInLayers', 'encoder.layers.1.fc2');
    await waitFor('selection', () => a.treeView.selection[0]?.kind === 'layer');
    const selected = a.treeView.selection[0];
    assert.equal(selected?.kind === 'layer' && selected.layer.name, 'encoder.layers.1.fc2');
    const node = a.tree.nodeFor('head')!;
    const copied = await vscode.commands.executeCommand('rankscope.copyName', node, [node]);
    assert.equal(copied, 'head');
    assert.equal(await vscode.env.clipboard.readText(), 'head');
  });

  test('a group the user folds or opens keeps that state when the tree refreshes', async () => {
    const a = await api();
    const state = (path: string) => {
      const group = a.tree.getChildren(a.tree.getChildren()[0]).find((n) => n.kind === 'group' && n.path === path)!;
      return item(a, group).collapsibleState;
    };
    assert.equal(state('encoder'), vscode.TreeItemCollapsibleState.Expanded, 'a small group starts open');
    const folded = new Promise<void>((r) => { const d = a.treeView.onDidCollapseElement(() => { d.dispose(); r(); }); });
    await vscode.commands.executeCommand('workbench.actions.treeView.rankscope.layers.collapseAll');
    await folded;
    // A re-sort rebuilds the nodes and VS Code asks for every item again.
    await vscode.commands.executeCommand('rankscope.sortLayers', 'module');
    assert.equal(state('encoder'), vscode.TreeItemCollapsibleState.Collapsed, 'folded by the user, still folded');
    await a.treeView.reveal(a.tree.nodeFor('encoder.layers.0.fc1')!, { select: false, expand: true });
    await waitFor('encoder open again', () => state('encoder') === vscode.TreeItemCollapsibleState.Expanded || undefined);
  });

  test('Show Spectrum sends all min(out, in) singular values, matching numpy, to a loaded panel', async () => {
    const a = await api();
    const expected = fx.layers.find((l) => l.name === 'encoder.layers.1.fc2')!;
    const node = a.tree.nodeFor(expected.name)!;
    await vscode.commands.executeCommand('rankscope.showSpectrum', node, [node, a.tree.nodeFor('head')!]);
    const shown = a.spectrum.current!;
    assert.equal(shown.focus, expected.name);
    assert.equal(shown.series.length, 2);
    const sv = shown.series[0]!.singularValues;
    assert.equal(sv.length, Math.min(...expected.shape));
    const tol = 1e-5 * expected.sv[0]!;
    sv.forEach((s, i) => assert.ok(Math.abs(s - expected.sv[i]!) <= tol, `σ${i}: ${s} vs numpy ${expected.sv[i]}`));
    assert.equal(shown.series[0]!.energyRank['0.95'], expected.r95);
    await waitFor('spectrum webview ready', () => a.spectrum.webviewReady);
  });

  test('a file that is not ONNX is refused and the open model stays', async () => {
    const a = await api();
    const bad = join(fx.dir, 'notes.onnx');
    writeFileSync(bad, 'this is not a model');
    const result = await vscode.commands.executeCommand('rankscope.openModel', bad);
    assert.equal(result, undefined);
    assert.equal(a.session.path, fx.model);
  });

  test('the .onnx custom editor shows the overview, parsed on the host', async () => {
    const a = await api();
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(fx.model), 'rankscope.modelOverview');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputCustom && tab.input.viewType === 'rankscope.modelOverview', 'custom editor tab');
    const loaded = await waitFor('overview loaded', () => a.overview.loaded.get(fx.model));
    assert.equal(loaded.summary.layerCount, 5);
    assert.equal(loaded.summary.totalParams, fx.totalParams);
    const gains = await waitFor('gains', () => loaded.gains.length === 5 && loaded.gains);
    const best = [...fx.layers].sort((x, y) => (y.params - y.r95 * (y.shape[0] + y.shape[1])) - (x.params - x.r95 * (x.shape[0] + x.shape[1])))[0]!;
    assert.equal(gains[0]!.layer, best.name);
    assert.equal(gains[0]!.rank95, best.r95);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  test('Close Model empties the tree', async () => {
    const a = await api();
    await vscode.commands.executeCommand('rankscope.closeModel');
    assert.deepEqual(a.tree.getChildren(), []);
    assert.equal(a.session.totals(), undefined);
  });
});
