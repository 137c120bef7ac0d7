import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import type { RankscopeCommand } from './command';
import { optionsArg, selectedLayers } from './layerArgs';
import { log } from '../log';

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
    // Right after a model opens, the view may still be applying the new nodes: retry a little.
    for (let attempt = 1; ; attempt++) {
      try {
        await s.treeView.reveal(s.tree.nodeFor(name) ?? node, { select: true, focus: true, expand: true });
        return;
      } catch (e) {
        if (attempt < 4) await new Promise((r) => setTimeout(r, 400 * attempt));
        else if (optionsArg<{ quiet: boolean }>(args).quiet) return void log().warn(`Could not reveal ${name} in the Layers tree: ${(e as Error).message}`);
        else throw e;
      }
    }
  },
};
