// The read-only custom editor for model files (.onnx, PyTorch checkpoints, .safetensors): a model overview (summary, parameters by layer
// kind, the layers with most to gain). The model is parsed here, on the extension host; the view
// gets only the summary rows, never tensors. Protocol: webview/overview/protocol.ts.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { HostEndpoint, ReadyCommand } from '../../../webview/shared/ipc';
import {
  DidFailNotification, DidLoadNotification, DidUpdateGainsNotification, ShowInLayersCommand, ShowSpectrumCommand,
  type GainRow, type KindRow, type OverviewSummary,
} from '../../../webview/overview/protocol';
import { isRankscopeError } from '../../core/errors';
import { layerSpectra } from '../../core/compress/spectra';
import type { LayerSpectrum } from '../../core/linalg';
import { openModel } from '../../core/formats';
import { paramTotals } from '../../core/model/params';
import type { Model, ValueInfo } from '../../core/model/types';
import { log } from '../log';
import type { ModelSession } from '../session';
import { savingAtEnergy } from '../tree/layersTree';
import { htmlFor, webviewOptions } from './html';

export const overviewViewType = 'rankscope.modelOverview';

export function overviewOf(model: Model): { summary: OverviewSummary; kinds: KindRow[] } {
  const s = model.summary;
  const shape = (v: ValueInfo) => (v.shape ? `[${v.shape.map((d) => d ?? '?').join(', ')}]` : '?');
  const compressed = model.layers.filter((l) => l.compressed);
  const byKind = new Map<string, KindRow>();
  for (const l of model.layers) {
    const row = byKind.get(l.op) ?? { kind: l.op, count: 0, params: 0 };
    row.count++;
    row.params += l.params + l.biasParams;
    byKind.set(l.op, row);
  }
  const inLayers = [...byKind.values()].reduce((a, r) => a + r.params, 0);
  const kinds = [...byKind.values()].sort((a, b) => b.params - a.params);
  if (s.totalParams > inLayers) kinds.push({ kind: 'other', count: 0, params: s.totalParams - inLayers });
  return {
    summary: {
      fileName: basename(s.path),
      fileSize: s.fileSize,
      format: s.format,
      irVersion: s.irVersion,
      opsets: s.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`),
      producer: [s.producer.name, s.producer.version].filter(Boolean).join(' '),
      inputs: s.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: shape(v) })),
      outputs: s.outputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: shape(v) })),
      totalParams: s.totalParams,
      factorizableParams: s.factorizableParams,
      layerCount: model.layers.length,
      compressedCount: compressed.length,
      originalParams: compressed.length ? paramTotals(model).original : undefined,
    },
    kinds,
  };
}

export function gainsOf(model: Model, spectra: Iterable<LayerSpectrum>): GainRow[] {
  const rows: GainRow[] = [];
  for (const s of spectra) {
    const layer = model.layers.find((l) => l.name === s.layer);
    if (!layer) continue;
    const saved = savingAtEnergy(layer, s, 0.95);
    rows.push({ layer: layer.name, shape: layer.shape, params: layer.params, rank95: s.metrics.energyRank['0.95'], saved95: saved ?? 0 });
  }
  return rows.sort((a, b) => b.saved95 - a.saved95).slice(0, 20);
}

export class OverviewEditorProvider implements vscode.CustomReadonlyEditorProvider {
  /** Files whose overview was sent to a view, with what was sent (tests read it). */
  readonly loaded = new Map<string, { summary: OverviewSummary; gains: GainRow[] }>();
  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly session: ModelSession,
  ) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => {} };
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const path = document.uri.fsPath;
    const controller = new AbortController();
    panel.webview.options = webviewOptions(this.extensionUri);
    const endpoint = new HostEndpoint(
      (m) => panel.webview.postMessage(m),
      (e) => log().warn(`Model overview: dropped message: ${e.message}`),
    );
    const inLayers = async (layer: string, command: string) => {
      if (this.session.path !== path) await vscode.commands.executeCommand('rankscope.openModel', path);
      await vscode.commands.executeCommand(command, layer);
    };
    endpoint
      .onCommand(ReadyCommand, () => this.load(path, endpoint, controller.signal))
      .onCommand(ShowInLayersCommand, ({ layer }) => inLayers(layer, 'rankscope.showInLayers'))
      .onCommand(ShowSpectrumCommand, ({ layer }) => inLayers(layer, 'rankscope.showSpectrum'));
    panel.webview.onDidReceiveMessage((m) => endpoint.receive(m));
    panel.onDidDispose(() => {
      controller.abort();
      endpoint.dispose();
    });
    panel.webview.html = htmlFor(panel.webview, this.extensionUri, 'overview', basename(path));
  }

  private async load(path: string, endpoint: HostEndpoint, signal: AbortSignal): Promise<void> {
    let model: Model;
    try {
      model = this.session.path === path && this.session.model ? this.session.model : await openModel(path, { signal });
    } catch (e) {
      if (signal.aborted) return;
      log().error(`Model overview of ${path}: ${(e as Error).message}`);
      endpoint.notify(DidFailNotification, isRankscopeError(e)
        ? { message: e.message, hint: e.hint }
        : { message: `Could not open ${basename(path)}: ${(e as Error).message}` });
      return;
    }
    const overview = overviewOf(model);
    endpoint.notify(DidLoadNotification, overview);
    const record = { summary: overview.summary, gains: [] as GainRow[] };
    this.loaded.set(path, record);
    const layers = model.layers.filter((l) => l.factorizable).map((l) => l.name);
    const found = new Map<string, LayerSpectrum>();
    const send = () => {
      record.gains = gainsOf(model, found.values());
      endpoint.notify(DidUpdateGainsNotification, { gains: record.gains, pending: layers.length - found.size });
    };
    if (layers.length === 0) return send();
    let last = 0;
    try {
      await layerSpectra(model, {
        layers, order: 'size', signal, cacheDir: this.session.cacheDir(),
        onResult: (s) => {
          found.set(s.layer, s);
          // At most ~4 updates a second: the table re-sorts on each.
          if (Date.now() - last > 250 || found.size === layers.length) {
            last = Date.now();
            send();
          }
        },
      });
      send();
    } catch (e) {
      if (!signal.aborted) log().error(`Model overview spectra of ${path}: ${(e as Error).message}`);
    }
  }
}
