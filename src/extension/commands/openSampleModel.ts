import { existsSync, readdirSync } from 'node:fs';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import type { RankscopeCommand } from './command';

/** The bundled skeleton-action sample in media/samples (the first .onnx there). */
export function sampleModelPath(extensionUri: vscode.Uri): string {
  const dir = vscode.Uri.joinPath(extensionUri, 'media', 'samples').fsPath;
  const models = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort() : [];
  if (models.length === 0) {
    throw new RankscopeError('NOT_FOUND', `No sample model in ${dir}.`, 'Reinstall the extension, or open your own model with "Rankscope: Open Model…".');
  }
  return vscode.Uri.joinPath(extensionUri, 'media', 'samples', models[0]!).fsPath;
}

export const openSampleModel: RankscopeCommand = {
  id: 'rankscope.openSampleModel',
  action: 'Open sample model',
  run: (s) => vscode.commands.executeCommand<string | undefined>('rankscope.openModel', sampleModelPath(s.context.extensionUri)),
};
