import * as vscode from 'vscode';
import type { SortOrder } from '../settings';
import type { RankscopeCommand } from './command';

const orders: { order: SortOrder; label: string; detail: string }[] = [
  { order: 'module', label: 'Module order', detail: 'A hierarchy by module path, in graph order' },
  { order: 'params', label: 'Parameters', detail: 'Largest layers first' },
  { order: 'compressibility', label: 'Compressibility', detail: 'Most parameters saved at the default energy first' },
];

/**
 * Sort Layers…: stored in the `rankscope.layers.sortBy` setting, which the tree follows — in the
 * user's settings, never a new `.vscode/settings.json` in their project; only where a workspace
 * (folder) value already overrides the user's is that one changed, so the choice takes effect.
 */
export const sortLayers: RankscopeCommand = {
  id: 'rankscope.sortLayers',
  action: 'Sort layers',
  run: async (s, arg) => {
    let order = orders.find((o) => o.order === arg)?.order;
    if (!order) {
      const current = s.tree.sortOrder;
      const picked = await vscode.window.showQuickPick(
        orders.map((o) => ({ ...o, description: o.order === current ? '(current)' : undefined })),
        { title: 'Sort Layers By' },
      );
      order = picked?.order;
    }
    if (!order) return undefined;
    const config = vscode.workspace.getConfiguration('rankscope');
    const where = config.inspect('layers.sortBy');
    const target = where?.workspaceFolderValue !== undefined ? vscode.ConfigurationTarget.WorkspaceFolder
      : where?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await config.update('layers.sortBy', order, target);
    return order;
  },
};
