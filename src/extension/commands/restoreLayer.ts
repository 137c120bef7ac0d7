// Restore Layer (on compressed layers): recompose A·B into a dense weight and put the original
// nodes back, written to a new file (`model.restored.onnx`), which then opens in the tree.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { quickPickText } from '../format';
import { RankscopeError } from '../../core/errors';
import { restoreLayers } from '../../core/compress/apply';
import { onnxModel, outputPathFor } from '../compress';
import { log, noLinks } from '../log';
import { withCancellableProgress } from '../progress';
import type { RankscopeCommand } from './command';
import { optionsArg, selectedLayers } from './layerArgs';

export const restoreLayer: RankscopeCommand = {
  id: 'rankscope.restoreLayer',
  action: 'Restore layer',
  run: async (s, ...args) => {
    const model = onnxModel(s.session.requireModel());
    let names = selectedLayers(s, args).filter((n) => s.session.layer(n)?.compressed);
    if (names.length === 0) {
      const compressed = model.layers.filter((l) => l.compressed);
      if (compressed.length === 0) throw new RankscopeError('BAD_ARGUMENT', `No layer of ${basename(model.summary.path)} is compressed; nothing to restore.`);
      const picked = await vscode.window.showQuickPick(
        compressed.map((l) => ({ label: quickPickText(l.name), description: `rank ${l.compressed!.rank}`, layer: l.name })),
        { title: 'Restore Layers', canPickMany: true },
      );
      names = picked?.map((p) => p.layer) ?? [];
    }
    if (names.length === 0) return undefined;
    const output = optionsArg<{ output: string }>(args).output ?? outputPathFor(model.summary.path, 'restored');
    return withCancellableProgress(`Restoring ${names.length === 1 ? names[0] : `${names.length} layers`}`, async (signal) => {
      const result = await restoreLayers(model, names, output, { signal });
      for (const r of result.restored) log().info(`Restored ${r.layer}${r.sourceFile ? ` (from ${r.sourceFile})` : ''} → ${result.path}`);
      await s.session.open(result.path, signal);
      void vscode.window.showInformationMessage(noLinks(`Rankscope: restored ${names.length} layer${names.length === 1 ? '' : 's'} to dense weights in ${basename(result.path)}.`));
      return result.path;
    });
  },
};
