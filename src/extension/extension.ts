// Rankscope's extension host entry. Activation is lazy (views, commands, the .onnx editor and a
// workspace rankscope.json activate it) and cheap: it registers the tree, commands and views,
// nothing else runs until the user opens a model. The time from activate() to a registered tree
// is logged (goal < 150 ms).
import * as vscode from 'vscode';
import { isCompressible } from '../core/compress/plan';
import { commands } from './commands';
import { wireTradeoff } from './commands/showTradeoff';
import type { Services } from './commands/command';
import { quickPickText } from './format';
import { reportError, log } from './log';
import { ModelSession } from './session';
import { createStatusBar } from './statusBar';
import { LayersTreeProvider, sparklineDir } from './tree/layersTree';
import { FinetunePanels } from './webviews/finetunePanel';
import { OverviewEditorProvider, overviewViewType } from './webviews/overviewEditor';
import { SpectrumViewProvider } from './webviews/spectrumView';
import { TradeoffPanels } from './webviews/tradeoffPanel';

/** What `activate` returns: the live objects, for integration tests and other extensions. */
export interface RankscopeApi extends Omit<Services, 'context'> {
  overview: OverviewEditorProvider;
  statusBar: vscode.StatusBarItem;
  /** Milliseconds from activate() to the registered tree. */
  activationMs: number;
}

export function activate(context: vscode.ExtensionContext): RankscopeApi {
  const t0 = performance.now();
  const storage = context.globalStorageUri;
  const session = new ModelSession(storage);
  const tree = new LayersTreeProvider(session, sparklineDir(storage));
  const treeView = vscode.window.createTreeView('rankscope.layers', { treeDataProvider: tree, canSelectMany: true, showCollapseAll: true });
  const treeExpansion = tree.followExpansion(treeView);
  const activationMs = performance.now() - t0;

  const run = (id: string, ...args: unknown[]) => vscode.commands.executeCommand(id, ...args);
  const spectrum = new SpectrumViewProvider(context.extensionUri, session, {
    compressAtRank: async (layer, rank) => {
      const before = session.requireModel();
      const file = await run('rankscope.compressLayer', { layers: [layer], policy: { rank } }) as string | undefined;
      if (!file) throw new Error('Compression did not complete; see the Rankscope log.');
      const row = session.layer(layer);
      const old = before.layers.find((l) => l.name === layer)!;
      return { file, paramsBefore: old.params, paramsAfter: row?.params ?? old.params, energyKept: row?.compressed?.energyKept ?? 1 };
    },
    revealLayer: async (layer) => void await run('rankscope.showInLayers', layer),
    pickLayers: async () => {
      const model = session.model;
      if (!model) return [];
      const picked = await vscode.window.showQuickPick(
        model.layers.filter(isCompressible).map((l) => ({ label: quickPickText(l.name), layer: l.name })),
        { title: 'Overlay spectra of', canPickMany: true },
      );
      return picked?.map((p) => p.layer) ?? [];
    },
  });
  const tradeoff = new TradeoffPanels(context);
  const finetune = new FinetunePanels(context);
  const statusBar = createStatusBar(session);
  const overview = new OverviewEditorProvider(context.extensionUri, session);
  const services: Services = { context, session, tree, treeView, spectrum, tradeoff, finetune };
  wireTradeoff(services);

  context.subscriptions.push(
    log(), session, tree, treeView, treeExpansion, spectrum,
    vscode.window.registerWebviewViewProvider(SpectrumViewProvider.viewId, spectrum, { webviewOptions: { retainContextWhenHidden: true } }),
    vscode.window.registerCustomEditorProvider(overviewViewType, overview, {
      supportsMultipleEditorsPerDocument: true,
      webviewOptions: { retainContextWhenHidden: false },
    }),
    tradeoff.registerSerializer(),
    statusBar, statusBar.subscription,
    session.onDidChangeModel(() => spectrum.clear()),
    ...commands.map((c) => vscode.commands.registerCommand(c.id, async (...args: unknown[]) => {
      try {
        return await c.run(services, ...args);
      } catch (e) {
        reportError(c.action, e);
        return undefined;
      }
    })),
  );
  void vscode.commands.executeCommand('setContext', 'rankscope.modelOpen', false);
  log().info(`Rankscope activated: tree registered ${activationMs.toFixed(1)} ms after activate(), all registered after ${(performance.now() - t0).toFixed(1)} ms`);
  return { session, tree, treeView, spectrum, tradeoff, finetune, overview, statusBar, activationMs };
}

export function deactivate(): void {}
