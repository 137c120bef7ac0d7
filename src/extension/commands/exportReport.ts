// Export Report: a Markdown report of the open model (every layer with its spectrum statistics),
// written next to the model and opened. Tests pass `{ output }`.
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { isCompressible } from '../../core/compress/plan';
import { checkOutputPath, writeFileAtomic } from '../../core/fs/atomicWrite';
import { withCancellableProgress } from '../progress';
import { markdownReport } from '../report';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

export const exportReport: RankscopeCommand = {
  id: 'rankscope.exportReport',
  action: 'Export report',
  run: async (s, ...args) => {
    const model = s.session.requireModel();
    const given = optionsArg<{ output: string }>(args).output;
    let output = given;
    if (!output) {
      const proposed = s.session.path!.replace(/\.onnx$/i, '') + '.report.md';
      const picked = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(proposed), filters: { Markdown: ['md'] }, saveLabel: 'Export Report' });
      output = picked?.fsPath;
    }
    if (!output) return undefined;
    const target = output;
    checkOutputPath(target, { inputs: [s.session.path] }); // before the spectra, not after
    const names = model.layers.filter(isCompressible).map((l) => l.name);
    await withCancellableProgress('Computing spectra for the report', (signal) => s.session.ensureSpectra(names, signal));
    const text = markdownReport(model, (l) => s.session.spectrum(l), s.session.totals()!);
    await writeFileAtomic(target, text, { inputs: [s.session.path] });
    if (!given && existsSync(target)) await vscode.window.showTextDocument(vscode.Uri.file(target), { preview: false });
    return target;
  },
};
