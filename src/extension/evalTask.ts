// The workspace's `rankscope.json` (EVAL's task file): where the extension finds the evaluation
// data, preset and sweep levels the CLI also uses.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { readTaskFile, type TaskFile } from '../core/eval/task';

export function taskFilePath(): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return folder ? join(folder, 'rankscope.json') : undefined;
}

/** The task file when there is one; paths stay as written (relative to its folder). */
export async function readWorkspaceTask(): Promise<{ path: string; task: TaskFile } | undefined> {
  const path = taskFilePath();
  if (!path || !existsSync(path)) return undefined;
  return { path, task: await readTaskFile(path) };
}

/** A path from the task file, made absolute against the file's folder. */
export function taskPath(taskFile: string, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(taskFile), p);
}
