// The open model's parameters in the status bar (original → current, % saved); a click focuses
// the Layers tree.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { formatCount, formatSaved } from '../core/format';
import type { ModelSession } from './session';

export function createStatusBar(session: ModelSession): vscode.StatusBarItem & { subscription: vscode.Disposable } {
  const item = vscode.window.createStatusBarItem('rankscope.params', vscode.StatusBarAlignment.Left, 50);
  item.name = 'Rankscope Parameters';
  item.command = 'rankscope.layers.focus';
  const update = () => {
    const totals = session.totals();
    if (!totals || !session.path) {
      item.hide();
      return;
    }
    item.text = totals.original === totals.current
      ? `$(symbol-structure) ${formatCount(totals.current)} params`
      : `$(symbol-structure) ${formatCount(totals.original)} → ${formatCount(totals.current)} (${formatSaved(totals.original, totals.current)})`;
    item.tooltip = `${basename(session.path)}: ${totals.current.toLocaleString('en-US')} parameters`
      + (totals.original !== totals.current ? ` (${totals.original.toLocaleString('en-US')} before compression)` : '')
      + '. Click to show the Layers tree.';
    item.show();
  };
  update();
  return Object.assign(item, { subscription: session.onDidChangeModel(update) });
}
