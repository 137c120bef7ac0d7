import { basename } from 'node:path';
import * as vscode from 'vscode';
import { withCancellableProgress } from '../progress';
import type { RankscopeCommand } from './command';

/** Open Model…: from the palette (file dialog), the Explorer context menu (a Uri) or a path. */
export const openModel: RankscopeCommand = {
  id: 'rankscope.openModel',
  action: 'Open model',
  run: async (s, arg) => {
    let path: string | undefined;
    if (arg instanceof vscode.Uri) path = arg.fsPath;
    else if (typeof arg === 'string') path = arg;
    else {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Open Model',
        filters: { Models: ['onnx', 'pt', 'pth', 'bin', 'safetensors'], 'ONNX models': ['onnx'], 'PyTorch checkpoints': ['pt', 'pth', 'bin'], safetensors: ['safetensors'], 'All files': ['*'] },
        defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
      });
      path = picked?.[0]?.fsPath;
    }
    if (!path) return undefined;
    const target = path;
    await withCancellableProgress(`Opening ${basename(target)}`, (signal) => s.session.open(target, signal));
    await vscode.commands.executeCommand('rankscope.layers.focus');
    return target;
  },
};
