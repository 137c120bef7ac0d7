// The "Rankscope" log channel and the one way errors reach the user: a notification with a
// "Show Log" action. RankscopeError (user-caused) shows its message and hint; anything else is a
// bug, logged with its stack.
import * as vscode from 'vscode';
import { isRankscopeError, RankscopeError, type ErrorCode } from '../core/errors';

/** A button on an error notification: runs `command` with `args`. */
export interface ErrorAction {
  title: string;
  command: string;
  args?: unknown[];
}

/** A user error whose notification offers a fix (e.g. "Open Settings" at the right setting). */
export class ActionableError extends RankscopeError {
  constructor(code: ErrorCode, message: string, hint: string | undefined, readonly actions: ErrorAction[]) {
    super(code, message, hint);
  }
}

/** The buttons of an error's notification, "Show Log" last. */
export function errorActions(e: unknown): ErrorAction[] {
  return [...(e instanceof ActionableError ? e.actions : []), { title: 'Show Log', command: 'rankscope.showLog' }];
}

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
  const actions = errorActions(e);
  void vscode.window.showErrorMessage(noLinks(`Rankscope: ${action} failed. ${message}`), ...actions.map((a) => a.title)).then((choice) => {
    const picked = actions.find((a) => a.title === choice);
    if (picked?.command === 'rankscope.showLog') log().show(true);
    else if (picked) void vscode.commands.executeCommand(picked.command, ...(picked.args ?? []));
  });
}
