// The Python that runs the fine-tuning worker. The extension's own candidates come first — the
// `rankscope.python.interpreter` setting, then the Python extension's selected interpreter
// (@vscode/python-extension) — and WORKER's discovery (src/worker/pythonDiscovery.ts) adds the
// environment's and picks the first that has torch, as the CLI does. Which one was chosen, and why
// the others were skipped, goes to the log.
import * as vscode from 'vscode';
import { isRankscopeError } from '../core/errors';
import { requirePython, type DiscoveryOptions, type PythonCandidate, type PythonDiscovery } from '../worker/pythonDiscovery';
import { ActionableError, log } from './log';
import { settings } from './settings';

export const PYTHON_SETTING = 'rankscope.python.interpreter';

/** What the error says and its button opens. */
export const PYTHON_HOW = `Set ${PYTHON_SETTING} to a Python 3 with torch and numpy (or select one with the Python extension).`;

export const openPythonSetting = { title: 'Open Settings', command: 'workbench.action.openSettings', args: [PYTHON_SETTING] };

/** The setting, then the Python extension's interpreter for the first workspace folder (when installed). */
export async function extensionCandidates(): Promise<PythonCandidate[]> {
  const out: PythonCandidate[] = [];
  const configured = settings().pythonInterpreter;
  if (configured) out.push({ path: configured, source: `setting ${PYTHON_SETTING}` });
  if (vscode.extensions.getExtension('ms-python.python')) {
    try {
      const { PythonExtension } = await import('@vscode/python-extension');
      const api = await PythonExtension.api();
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(folder));
      const exe = env?.executable.uri?.fsPath;
      if (exe) out.push({ path: exe, source: 'Python extension\'s selected interpreter' });
    } catch (e) {
      log().warn(`The Python extension did not give an interpreter: ${(e as Error).message}`);
    }
  }
  return out;
}

export interface ChosenPython {
  path: string;
  source: string;
  torch: string;
  discovery: PythonDiscovery;
}

/** Logs a discovery: the choice, and each skipped candidate with its reason (a warning for the setting). */
export function logDiscovery(d: PythonDiscovery): void {
  for (const p of d.probes) {
    if (!p.rejected) continue;
    const line = `Python ${p.executable ?? p.path} (${p.source}) skipped: ${p.rejected}`;
    if (p.source.startsWith('setting')) log().warn(line);
    else log().info(line);
  }
  if (d.chosen) log().info(`Python for fine-tuning: ${d.chosen.executable} (${d.chosen.source}), torch ${d.chosen.torch}`);
}

/**
 * The first candidate with torch (a few seconds: each is started once). Throws an error with an
 * "Open Settings" button when none has it. `options` (env, systemPythons) is for tests.
 */
export async function pythonInterpreter(options: DiscoveryOptions = {}): Promise<ChosenPython> {
  try {
    const d = await requirePython(await extensionCandidates(), PYTHON_HOW, options);
    logDiscovery(d);
    return { path: d.chosen.executable, source: d.chosen.source, torch: d.chosen.torch, discovery: d };
  } catch (e) {
    if (!isRankscopeError(e) || e.code !== 'WORKER') throw e;
    throw new ActionableError('WORKER', e.message, e.hint, [openPythonSetting]);
  }
}
