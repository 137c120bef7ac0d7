// The two ways back from a factorized layer (tree context menu on compressed layers, palette):
// - Restore Original Weights: the weight the layer had before compression, read from the source
//   model the metadata records and checked against the recorded hash (a clear error, and
//   nothing written, when the source is gone or changed);
// - Recompose to Dense: A·B as one dense weight (the compression error stays; needs no source).
// Both put the original nodes back and write a NEW file (asking for its name, proposing the next
// free `model.restored.onnx` / `model.dense.onnx`), which then opens in the tree.
// Tests pass `{ layers, output }` (without `output`: the next free name, no prompt).
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { recomposeLayers, restoreOriginalLayers } from '../../core/compress/apply';
import { quickPickText } from '../format';
import { askOutputPath, onnxModel, outputPathFor } from '../compress';
import { log, noLinks } from '../log';
import { withCancellableProgress } from '../progress';
import type { RankscopeCommand, Services } from './command';
import { optionsArg, selectedLayers } from './layerArgs';

type Mode = 'original' | 'recompose';

const MODES: Record<Mode, { title: string; suffix: string; progress: string; done: (n: number, file: string, source: string) => string }> = {
  original: {
    title: 'Restore Original Weights', suffix: 'restored', progress: 'Restoring the original weights of',
    done: (n, file, source) => `restored the original weights of ${n} layer${n === 1 ? '' : 's'} (from ${source}) in ${file}.`,
  },
  recompose: {
    title: 'Recompose to Dense', suffix: 'dense', progress: 'Recomposing',
    done: (n, file) => `recomposed ${n} layer${n === 1 ? '' : 's'} to dense A·B weights in ${file} (the compression error stays; "Restore Original Weights" brings back the originals).`,
  },
};

async function run(s: Services, args: unknown[], mode: Mode): Promise<string | undefined> {
  const m = MODES[mode];
  const model = onnxModel(s.session.requireModel());
  const given = optionsArg<{ layers: string[]; output: string }>(args);
  const scripted = Object.keys(given).length > 0; // a test or script: no prompts
  let names = selectedLayers(s, args).filter((n) => s.session.layer(n)?.compressed);
  if (names.length === 0) {
    const compressed = model.layers.filter((l) => l.compressed);
    if (compressed.length === 0) throw new RankscopeError('BAD_ARGUMENT', `No layer of ${basename(model.summary.path)} is compressed; nothing to restore.`);
    const picked = await vscode.window.showQuickPick(
      compressed.map((l) => ({ label: quickPickText(l.name), description: `rank ${l.compressed!.rank}`, layer: l.name })),
      { title: m.title, canPickMany: true },
    );
    names = picked?.map((p) => p.layer) ?? [];
  }
  if (names.length === 0) return undefined;
  const output = given.output ?? (scripted ? outputPathFor(model.summary.path, m.suffix) : await askOutputPath(model.summary.path, m.suffix, `${m.title}: write the model to`));
  if (!output) return undefined;
  return withCancellableProgress(`${m.progress} ${names.length === 1 ? names[0] : `${names.length} layers`}`, async (signal) => {
    const result = await (mode === 'original' ? restoreOriginalLayers : recomposeLayers)(model, names, output, { signal });
    for (const r of result.restored) log().info(`${m.title}: ${r.layer}${r.sourceFile ? ` (source ${r.sourceFile})` : ''} → ${result.path}`);
    await s.session.open(result.path, signal);
    const sources = [...new Set(result.restored.map((r) => basename(r.sourceFile ?? '?')))].join(', ');
    void vscode.window.showInformationMessage(noLinks(`Rankscope: ${m.done(names.length, basename(result.path), sources)}`));
    return result.path;
  });
}

export const restoreOriginalWeights: RankscopeCommand = {
  id: 'rankscope.restoreOriginalWeights', action: 'Restore original weights', run: (s, ...args) => run(s, args, 'original'),
};
export const recomposeToDense: RankscopeCommand = {
  id: 'rankscope.recomposeToDense', action: 'Recompose to dense', run: (s, ...args) => run(s, args, 'recompose'),
};
