// Check Fine-tuning Environment: WORKER's check (starts the worker in --hello mode with the
// interpreter fine-tuning would use) shown as a notification, details in the log.
import * as vscode from 'vscode';
import { checkFinetuneEnvironment as check, formatEnvReport } from '../../worker/envCheck';
import { log } from '../log';
import { withCancellableProgress } from '../progress';
import { pythonInterpreter } from '../python';
import type { RankscopeCommand } from './command';

export const checkFinetuneEnvironment: RankscopeCommand = {
  id: 'rankscope.checkFinetuneEnvironment',
  action: 'Check fine-tuning environment',
  run: async () => {
    const python = await pythonInterpreter();
    const report = await withCancellableProgress(`Checking ${python.path}`, (signal) => check(python.path, { signal }));
    for (const line of formatEnvReport(report)) log().info(line);
    log().info(`(interpreter from ${python.source})`);
    const first = report.ok
      ? `Rankscope: fine-tuning is ready on ${report.device}. ${report.notes[0] ?? ''}`
      : `Rankscope: fine-tuning cannot run: ${report.problems.map((p) => `${p.what} Fix: ${p.fix}`).join(' ')}`;
    const show = report.ok ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    void show(first, 'Show Log').then((c) => c && log().show(true));
    return report;
  },
};
