// Open Sample Model: copies the bundled skeleton-action sample (media/samples: the model its
// rankscope.json names — the Transformer — its data, the task file, the class names and README)
// into `rankscope-sample/` of the workspace folder, or of a folder the user picks when none is
// open, and opens the model there. Everything the user then writes (compressed models, fine-tuned
// ones) lands next to that copy, never in the extension's install folder. An existing copy is
// reused; files already there are never overwritten. Tests pass `{ folder }`.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyEdits, modify, parse } from 'jsonc-parser';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { log } from '../log';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

export const SAMPLE_FOLDER = 'rankscope-sample';

/** The bundled sample: its folder, the model its task file names, and the files to copy. */
export function bundledSample(extensionUri: vscode.Uri): { dir: string; model: string; files: string[] } {
  const dir = vscode.Uri.joinPath(extensionUri, 'media', 'samples').fsPath;
  const taskFile = join(dir, 'rankscope.json');
  if (!existsSync(taskFile)) {
    throw new RankscopeError('NOT_FOUND', `No sample in ${dir}.`, 'Reinstall the extension, or open your own model with "Rankscope: Open Model…".');
  }
  const task = parse(readFileSync(taskFile, 'utf8')) as { model?: string; data?: string };
  if (!task.model || !task.data) throw new RankscopeError('CORRUPT', `${taskFile} does not name the sample's model and data.`, 'Reinstall the extension.');
  const extras = readdirSync(dir).filter((f) => f === 'README.md' || f.endsWith('.classes.json'));
  const files = [task.model, task.data, 'rankscope.json', ...extras];
  for (const f of files) {
    if (!existsSync(join(dir, f))) throw new RankscopeError('NOT_FOUND', `The sample is incomplete: ${join(dir, f)} is missing.`, 'Reinstall the extension.');
  }
  return { dir, model: task.model, files };
}

/** Copies the sample's missing files into `target` (atomically each); returns the model's path there. */
export async function copySample(extensionUri: vscode.Uri, target: string): Promise<string> {
  const sample = bundledSample(extensionUri);
  await mkdir(target, { recursive: true });
  for (const f of sample.files) {
    const to = join(target, f);
    if (existsSync(to)) continue;
    const tmp = `${to}.${process.pid}.tmp`;
    if (f === 'rankscope.json') {
      // The bundled file points its $schema into the extension's source tree; in the copy the
      // schema comes from the extension (contributes.jsonValidation). The rest stays as written.
      const text = readFileSync(join(sample.dir, f), 'utf8');
      await writeFile(tmp, applyEdits(text, modify(text, ['$schema'], undefined, { formattingOptions: { insertSpaces: true, tabSize: 2 } })));
    } else {
      await copyFile(join(sample.dir, f), tmp);
    }
    await rename(tmp, to);
  }
  return join(target, sample.model);
}

export const openSampleModel: RankscopeCommand = {
  id: 'rankscope.openSampleModel',
  action: 'Open sample model',
  run: async (s, ...args) => {
    let folder = optionsArg<{ folder: string }>(args).folder ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!folder) {
      const picked = await vscode.window.showOpenDialog({
        title: 'Copy the sample model into this folder', canSelectFolders: true, canSelectFiles: false, openLabel: 'Copy Sample Here',
      });
      folder = picked?.[0]?.fsPath;
    }
    if (!folder) return undefined;
    const target = join(folder, SAMPLE_FOLDER);
    const model = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Copying the sample to ${target}` },
      () => copySample(s.context.extensionUri, target));
    log().info(`Sample copied to ${target}; opening ${model}`);
    return vscode.commands.executeCommand<string | undefined>('rankscope.openModel', model);
  },
};
