import * as vscode from 'vscode';
import type { RankscopeCommand } from './command';
import { selectedLayers } from './layerArgs';

export const copyName: RankscopeCommand = {
  id: 'rankscope.copyName',
  action: 'Copy name',
  run: async (s, ...args) => {
    const names = selectedLayers(s, args);
    if (names.length === 0) return undefined;
    const text = names.join('\n');
    await vscode.env.clipboard.writeText(text);
    return text;
  },
};
