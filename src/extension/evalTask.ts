// The `rankscope.json` (EVAL's task file) that goes with a model: where the extension finds the
// evaluation data, preset and sweep levels the CLI also uses. The nearest one from the model's
// folder up to the workspace folder (a copied sample brings its own), else the workspace folder's.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import * as vscode from 'vscode';
import { readTaskFile, type TaskFile } from '../core/eval/task';

/** The task file for the model at `near` (or the workspace's): the path, existing or not. */
export function taskFilePath(near?: string): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (near) {
    for (let dir = dirname(resolve(near)); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'rankscope.json'))) return join(dir, 'rankscope.json');
      const outside = !folder || relative(folder, dir) === '' || relative(folder, dir).startsWith('..');
      if (outside || dirname(dir) === dir) break;
    }
  }
  return folder ? join(folder, 'rankscope.json') : undefined;
}

/** The task file for the model at `near` when there is one; paths stay as written (relative to its folder). */
export async function readWorkspaceTask(near?: string): Promise<{ path: string; task: TaskFile } | undefined> {
  const path = taskFilePath(near);
  if (!path || !existsSync(path)) return undefined;
  return { path, task: await readTaskFile(path) };
}

/** A path from the task file, made absolute against the file's folder. */
export function taskPath(taskFile: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(taskFile), p);
}
