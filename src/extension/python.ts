// The Python that runs the fine-tuning worker: the `rankscope.python.interpreter` setting, else
// the Python extension's active environment (@vscode/python-extension), else `python3`.
import * as vscode from 'vscode';
import { defaultPython } from '../worker/client';
import { log } from './log';
import { settings } from './settings';

export async function pythonInterpreter(): Promise<{ path: string; source: 'setting' | 'python extension' | 'default' }> {
  const configured = settings().pythonInterpreter;
  if (configured) return { path: configured, source: 'setting' };
  if (vscode.extensions.getExtension('ms-python.python')) {
    try {
      const { PythonExtension } = await import('@vscode/python-extension');
      const api = await PythonExtension.api();
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(folder));
      const exe = env?.executable.uri?.fsPath;
      if (exe) return { path: exe, source: 'python extension' };
    } catch (e) {
      log().warn(`Python extension did not give an interpreter: ${(e as Error).message}`);
    }
  }
  return { path: defaultPython(), source: 'default' };
}
