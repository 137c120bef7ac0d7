// A command: one per file, listed in index.ts, registered by extension.ts, which turns a thrown
// error into a notification with "Show Log". Commands take optional arguments so that tests and
// other commands can drive them without dialogs; a menu invocation passes tree nodes instead.
import type * as vscode from 'vscode';
import type { LayersNode, LayersTreeProvider } from '../tree/layersTree';
import type { ModelSession } from '../session';
import type { SpectrumViewProvider } from '../webviews/spectrumView';
import type { TradeoffPanels } from '../webviews/tradeoffPanel';
import type { FinetunePanels } from '../webviews/finetunePanel';

export interface Services {
  context: vscode.ExtensionContext;
  session: ModelSession;
  tree: LayersTreeProvider;
  treeView: vscode.TreeView<LayersNode>;
  spectrum: SpectrumViewProvider;
  tradeoff: TradeoffPanels;
  finetune: FinetunePanels;
}

export interface RankscopeCommand {
  id: string;
  /** What the error notification calls the action ("Compress layers failed …"). */
  action: string;
  run(services: Services, ...args: unknown[]): unknown;
}
