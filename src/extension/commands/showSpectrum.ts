// Show Spectrum: the selected layers in the Spectrum side panel (the first one focused, the rest
// overlaid). Also what a click on a layer in the tree runs.
import * as vscode from 'vscode';
import { isCompressible } from '../../core/compress/plan';
import { quickPickText } from '../format';
import { RankscopeError } from '../../core/errors';
import { withCancellableProgress } from '../progress';
import type { RankscopeCommand } from './command';
import { optionsArg, selectedLayers } from './layerArgs';

export const showSpectrum: RankscopeCommand = {
  id: 'rankscope.showSpectrum',
  action: 'Show spectrum',
  run: async (s, ...args) => {
    const model = s.session.requireModel();
    let names = selectedLayers(s, args);
    if (names.length === 0) {
      const picked = await vscode.window.showQuickPick(
        model.layers.filter(isCompressible).map((l) => ({ label: quickPickText(l.name), layer: l.name })),
        { title: 'Show Spectrum of', canPickMany: true },
      );
      names = picked?.map((p) => p.layer) ?? [];
    }
    if (names.length === 0) return undefined;
    for (const n of names) {
      if (!s.session.layer(n)) throw new RankscopeError('NOT_FOUND', `Layer '${n}' is not in the open model.`);
    }
    const { rank } = optionsArg<{ rank: number }>(args);
    return withCancellableProgress('Computing spectra', (signal) => s.spectrum.show(names, { rank, signal }), vscode.ProgressLocation.Window);
  },
};
