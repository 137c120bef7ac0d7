// Configure Evaluation Data…: picks the .npz/.npy the model is scored on and records it (with the
// NTU preset when the arrays look like NTU skeletons) in the workspace's rankscope.json — the
// task file the CLI reads too. Existing fields are kept. Tests pass `{ data, preset }`.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError } from '../../core/errors';
import { writeFileAtomic } from '../../core/fs/atomicWrite';
import { openArrayFile } from '../../core/eval/npz';
import { NTU_FRAME_SIZE } from '../../core/eval/ntu';
import { validateTask, type TaskFile } from '../../core/eval/task';
import { taskFilePath } from '../evalTask';
import { log } from '../log';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

/** NTU skeletons: x arrays (N, T, 150) next to one-hot or index labels. */
async function looksLikeNtu(path: string): Promise<boolean> {
  const file = await openArrayFile(path);
  try {
    const key = file.keys.find((k) => k === 'x_test') ?? file.keys.find((k) => k.startsWith('x'));
    if (!key) return false;
    const shape = (await file.array(key)).shape;
    return shape.length === 3 && shape[2] === NTU_FRAME_SIZE;
  } finally {
    await file.close();
  }
}

export const configureEvalData: RankscopeCommand = {
  id: 'rankscope.configureEvalData',
  action: 'Configure evaluation data',
  run: async (_s, ...args) => {
    const taskPath = taskFilePath();
    if (!taskPath) throw new RankscopeError('BAD_ARGUMENT', 'Open a folder first: the evaluation data is recorded in its rankscope.json.');
    const given = optionsArg<{ data: string; preset: 'ntu' | 'none' }>(args);
    let data = given.data;
    if (!data) {
      const picked = await vscode.window.showOpenDialog({
        title: 'Evaluation data', openLabel: 'Use for Evaluation', canSelectMany: false,
        filters: { 'NumPy arrays': ['npz', 'npy'] }, defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      });
      data = picked?.[0]?.fsPath;
    }
    if (!data) return undefined;
    if (!existsSync(data)) throw new RankscopeError('NOT_FOUND', `Data file not found: ${data}`);
    const preset = given.preset ?? ((await looksLikeNtu(data)) ? 'ntu' : 'none');
    let task: TaskFile = {};
    if (existsSync(taskPath)) {
      try {
        task = JSON.parse(await readFile(taskPath, 'utf8')) as TaskFile;
      } catch (e) {
        throw new RankscopeError('CORRUPT', `${taskPath} is not valid JSON: ${(e as Error).message}`, 'Fix or delete it, then run this command again.');
      }
    }
    const rel = relative(vscode.workspace.workspaceFolders![0]!.uri.fsPath, data);
    task = { ...task, data: rel.startsWith('..') ? data : rel, preset };
    validateTask(task, taskPath);
    await writeFileAtomic(taskPath, `${JSON.stringify(task, null, 2)}\n`);
    log().info(`Evaluation data: ${data} (preset ${preset}) recorded in ${taskPath}`);
    if (!given.data) {
      void vscode.window.showInformationMessage(`Rankscope: evaluation data set in rankscope.json${preset === 'ntu' ? ' (NTU skeleton preset)' : ''}.`, 'Open rankscope.json')
        .then((c) => c && vscode.window.showTextDocument(vscode.Uri.file(taskPath)));
    }
    return taskPath;
  },
};
