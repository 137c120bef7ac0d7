// The "Rankscope" log channel and the one way errors reach the user: a notification with a
// "Show Log" action. RankscopeError (user-caused) shows its message and hint; anything else is a
// bug, logged with its stack.
import * as vscode from 'vscode';
import { isRankscopeError } from '../core/errors';

let channel: vscode.LogOutputChannel | undefined;

export function log(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('Rankscope', { log: true });
  return channel;
}

export function isCancellation(e: unknown): boolean {
  return (isRankscopeError(e) && e.code === 'CANCELLED') || (e as Error)?.name === 'AbortError' || e instanceof vscode.CancellationError;
}

/**
 * Notification text with untrusted parts (layer and file names): VS Code renders `[label](target)`
 * in notifications as a link — including `command:` links — so break that syntax.
 */
export function noLinks(text: string): string {
  return text.replace(/\]\s*\(/g, ']\u200b (');
}

/** Reports a failed action; cancellations are logged only. Never throws, never waits for the user. */
export function reportError(action: string, e: unknown): void {
  if (isCancellation(e)) {
    log().info(`${action}: cancelled`);
    return;
  }
  const message = isRankscopeError(e)
    ? `${e.message}${e.hint ? ` ${e.hint}` : ''}`
    : `Internal error: ${(e as Error)?.message ?? String(e)}`;
  if (isRankscopeError(e)) log().error(`${action}: [${e.code}] ${message}`);
  else log().error(`${action}: ${(e as Error)?.stack ?? String(e)}`);
  void vscode.window.showErrorMessage(noLinks(`Rankscope: ${action} failed. ${message}`), 'Show Log').then((choice) => {
    if (choice === 'Show Log') log().show(true);
  });
}
