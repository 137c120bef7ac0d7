// Long work under a progress notification whose Cancel button really stops it: the
// CancellationToken is bridged to the AbortSignal the core takes.
import * as vscode from 'vscode';

export interface ProgressReporter {
  /** `increment` in percent of the whole, as vscode.Progress wants it. */
  report(message: string, increment?: number): void;
}

export function withCancellableProgress<T>(
  title: string,
  work: (signal: AbortSignal, progress: ProgressReporter) => Promise<T>,
  location: vscode.ProgressLocation = vscode.ProgressLocation.Notification,
): Thenable<T> {
  return vscode.window.withProgress({ location, title, cancellable: true }, async (progress, token) => {
    const controller = new AbortController();
    const sub = token.onCancellationRequested(() => controller.abort());
    try {
      return await work(controller.signal, { report: (message, increment) => progress.report({ message, increment }) });
    } finally {
      sub.dispose();
    }
  });
}
