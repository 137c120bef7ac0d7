import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import type { RankscopeCommand } from './command';
import { selectedLayers } from './layerArgs';

/** Focuses a layer in the tree (the overview editor's "Show in Layers"). */
export const showInLayers: RankscopeCommand = {
  id: 'rankscope.showInLayers',
  action: 'Show in Layers',
  run: async (s, ...args) => {
    const [name] = selectedLayers(s, args, false);
    if (!name) return;
    const node = s.tree.nodeFor(name);
    if (!node) throw new RankscopeError('NOT_FOUND', `Layer '${name}' is not in the open model.`);
    await vscode.commands.executeCommand('rankscope.layers.focus');
    await s.tree.whenRendered();
    try {
      await s.treeView.reveal(node, { select: true, focus: true, expand: true });
    } catch {
      // Right after a model opens, the view may still be applying the new nodes: try once more.
      await new Promise((r) => setTimeout(r, 300));
      await s.treeView.reveal(s.tree.nodeFor(name) ?? node, { select: true, focus: true, expand: true });
    }
  },
};
