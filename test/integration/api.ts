// Shared by the suites: the activated extension's API and small waiting helpers.
import * as vscode from 'vscode';
import type { RankscopeApi } from '../../src/extension/extension';
import type { LayersNode } from '../../src/extension/tree/layersTree';

export const EXTENSION_ID = 'rankscope.rankscope';

export async function api(): Promise<RankscopeApi> {
  const ext = vscode.extensions.getExtension<RankscopeApi>(EXTENSION_ID);
  if (!ext) throw new Error(`${EXTENSION_ID} is not installed`);
  return ext.activate();
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every layer node under `node`, depth first, as the tree shows them. */
export function layerNodes(a: RankscopeApi, node?: LayersNode): Extract<LayersNode, { kind: 'layer' }>[] {
  return a.tree.getChildren(node).flatMap((c) => (c.kind === 'layer' ? [c] : layerNodes(a, c)));
}

export function item(a: RankscopeApi, node: LayersNode): vscode.TreeItem {
  return a.tree.getTreeItem(node);
}

export function workspaceDir(): string {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (!folder) throw new Error('the tests need a workspace folder');
  return folder;
}

/** Opens the model through the command and waits for every spectrum. */
export async function openAndSettle(a: RankscopeApi, path: string): Promise<void> {
  const opened = await vscode.commands.executeCommand<string | undefined>('rankscope.openModel', path);
  if (opened !== path) throw new Error(`rankscope.openModel(${path}) returned ${opened}`);
  await a.session.whenSpectraSettled();
}

/** Presses Enter in whatever quick input is open until `pending` settles. */
export async function acceptUntilDone<T>(pending: Thenable<T>, timeoutMs = 60_000): Promise<T> {
  let done = false;
  const result = Promise.resolve(pending).finally(() => { done = true; });
  const t0 = Date.now();
  while (!done && Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 400));
    if (!done) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
  }
  return result;
}
