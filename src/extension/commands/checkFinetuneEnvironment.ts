// Check Fine-tuning Environment: finds the interpreter fine-tuning would use (the setting, the
// Python extension's, then the environment's; the first with torch), starts the worker in --hello
// mode with it and shows the result as a notification — with "Open Settings" when no Python has
// torch — details in the log. Tests pass `{ discovery: { env, systemPythons } }`.
import * as vscode from 'vscode';
import { checkDiscoveredEnvironment, formatEnvReport } from '../../worker/envCheck';
import type { DiscoveryOptions } from '../../worker/pythonDiscovery';
import { log } from '../log';
import { withCancellableProgress } from '../progress';
import { extensionCandidates, openPythonSetting, PYTHON_HOW } from '../python';
import type { RankscopeCommand } from './command';
import { optionsArg } from './layerArgs';

export const checkFinetuneEnvironment: RankscopeCommand = {
  id: 'rankscope.checkFinetuneEnvironment',
  action: 'Check fine-tuning environment',
  run: async (_s, ...args) => {
    const discovery = optionsArg<{ discovery: Pick<DiscoveryOptions, 'env' | 'systemPythons'> }>(args).discovery ?? {};
    const first = await extensionCandidates();
    const report = await withCancellableProgress('Looking for Python with PyTorch', (signal) =>
      checkDiscoveredEnvironment(first, PYTHON_HOW, { ...discovery, signal }));
    for (const line of formatEnvReport(report)) log().info(line);
    const text = report.ok
      ? `Rankscope: fine-tuning is ready on ${report.device} with ${report.python}. ${report.notes[0] ?? ''}`
      : `Rankscope: fine-tuning cannot run: ${report.problems.map((p) => `${p.what} Fix: ${p.fix}`).join(' ')}`;
    const buttons = report.ok ? ['Show Log'] : [openPythonSetting.title, 'Show Log'];
    const show = report.ok ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    void show(text, ...buttons).then((c) => {
      if (c === 'Show Log') log().show(true);
      else if (c === openPythonSetting.title) void vscode.commands.executeCommand(openPythonSetting.command, ...openPythonSetting.args);
    });
    return report;
  },
};
