// Host of the Spectrum side panel (a WebviewView in the Rankscope container): sends the spectra
// of the layers the user picked, and answers the panel's requests (compress at the cut, export,
// add an overlay, reveal a layer). Messages are typed and validated by webview/spectrum/protocol.ts.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../../core/fs/atomicWrite';
import { HostEndpoint, ReadyCommand } from '../../../webview/shared/ipc';
import {
  CompressAtRankRequest, DidAddSeriesNotification, DidChangeBusyNotification, DidChangeRankCommand,
  DidSetSeriesNotification, ExportRequest, PickOverlayCommand, RevealLayerCommand,
  type CompressAtRankResult, type DidSetSeriesParams, type SpectrumSeries,
} from '../../../webview/spectrum/protocol';
import { layerFactorShape, maxRank } from '../../core/compress/policy';
import { whitenedSpectraOf } from '../../core/compress/apply';
import { calibrate, defaultCalibrationCacheDir } from '../../core/eval/calibration';
import { spectrumMetrics, type LayerSpectrum } from '../../core/linalg';
import { mergeDescending } from '../../core/linalg/singularValues';
import { OnnxModel } from '../../core/formats/onnx';
import { calibrationData } from '../compress';
import type { Layer } from '../../core/model/types';
import { log } from '../log';
import type { ModelSession } from '../session';
import { htmlFor, webviewOptions } from './html';

export interface SpectrumActions {
  compressAtRank(layer: string, rank: number): Promise<CompressAtRankResult>;
  revealLayer(layer: string): Promise<void>;
  /** QuickPick of layers to overlay; [] when cancelled. */
  pickLayers(): Promise<string[]>;
}

export function toSeries(layer: Layer, spectrum: LayerSpectrum): SpectrumSeries {
  const m = spectrum.metrics;
  const groups = layer.groups ?? 1;
  return {
    layer: layer.name,
    shape: [layer.shape[0], layer.shape[1]],
    groups,
    singularValues: Array.from(spectrum.singularValues),
    groupSingularValues: groups > 1 && spectrum.groups ? spectrum.groups.map((g) => Array.from(g)) : undefined,
    params: layer.params,
    energyRank: { '0.9': m.energyRank['0.9'], '0.95': m.energyRank['0.95'], '0.99': m.energyRank['0.99'] },
    stableRank: m.stableRank,
    compressedRank: layer.compressed?.rank,
    factorizable: layer.factorizable,
    reason: layer.reason,
  };
}

export class SpectrumViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'rankscope.spectrum';
  private view?: vscode.WebviewView;
  private endpoint?: HostEndpoint;
  private ready = false;
  /** What the panel shows (sent again when the webview reloads). Tests read it too. */
  private shown?: DidSetSeriesParams;
  private lastRank = new Map<string, number>();
  /** The whitened overlay being computed for the focused layer; a new focus cancels it. */
  private whitenedWork?: AbortController;
  /** Resolves when the last whitened overlay was added (or skipped); tests await it. */
  whitenedDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly session: ModelSession,
    private readonly actions: SpectrumActions,
  ) {}

  /** True once the panel's script ran and said `ready` (CSP, nonce and resource roots let it load). */
  get webviewReady(): boolean {
    return this.ready;
  }

  get current(): DidSetSeriesParams | undefined {
    return this.shown;
  }

  /** The rank the user last set with the cut line, per layer. */
  rankFor(layer: string): number | undefined {
    return this.lastRank.get(layer);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    view.webview.options = webviewOptions(this.extensionUri);
    const endpoint = new HostEndpoint(
      (m) => view.webview.postMessage(m),
      (e) => log().warn(`Spectrum panel: dropped message: ${e.message}`),
    );
    this.endpoint = endpoint;
    endpoint
      .onCommand(ReadyCommand, () => {
        this.ready = true;
        if (this.shown) endpoint.notify(DidSetSeriesNotification, this.shown);
      })
      .onCommand(DidChangeRankCommand, ({ layer, rank }) => void this.lastRank.set(layer, rank))
      .onCommand(PickOverlayCommand, async () => {
        const names = await this.actions.pickLayers();
        if (names.length) await this.addOverlays(names);
      })
      .onCommand(RevealLayerCommand, ({ layer }) => this.actions.revealLayer(layer))
      .onRequest(CompressAtRankRequest, ({ layer, rank }) => this.compressAtRank(layer, rank))
      .onRequest(ExportRequest, (p) => this.saveExport(p));
    view.webview.onDidReceiveMessage((m) => endpoint.receive(m));
    view.onDidDispose(() => {
      endpoint.dispose();
      if (this.view === view) {
        this.view = undefined;
        this.endpoint = undefined;
      }
    });
    view.webview.html = htmlFor(view.webview, this.extensionUri, 'spectrum', 'Spectrum');
  }

  /** "Compress at this rank": only a layer of the open model, at a rank it has. */
  async compressAtRank(layer: string, rank: number): Promise<CompressAtRankResult> {
    const l = this.session.layer(layer);
    if (!l) throw new Error(`Layer '${layer}' is not in the open model.`);
    const shape = layerFactorShape(l);
    const max = maxRank(shape);
    if (rank > max) throw new Error(`Rank ${rank} exceeds min(${shape.groups > 1 ? 'out/groups' : 'out'}, in) = ${max} of ${layer}.`);
    return this.actions.compressAtRank(layer, rank);
  }

  /** Shows `layers` (the first focused), computing their spectra if needed. */
  async show(layers: string[], options: { rank?: number; signal?: AbortSignal } = {}): Promise<DidSetSeriesParams> {
    // Keep the keyboard in the tree once the panel exists (a click on a layer shows its spectrum).
    if (this.view) this.view.show(true);
    else await vscode.commands.executeCommand(`${SpectrumViewProvider.viewId}.focus`);
    this.busy(`Computing the spectrum of ${layers.length === 1 ? layers[0] : `${layers.length} layers`}…`);
    try {
      const series = await this.seriesOf(layers, options.signal);
      this.shown = {
        series, focus: series[0]?.layer, rank: options.rank,
        modelName: this.session.path ? basename(this.session.path) : undefined,
      };
      if (this.ready) this.endpoint?.notify(DidSetSeriesNotification, this.shown);
      this.whitenedWork?.abort();
      if (series[0]) this.whitenedDone = this.addWhitened(series[0].layer);
      return this.shown;
    } finally {
      this.busy(null);
    }
  }

  /**
   * Beside the plain spectrum: the focused layer's whitened spectrum (σ of W·S from a calibration
   * pass on rankscope.json's data, cached on disk), when evaluation data is configured. An overlay
   * named '<layer> · whitened'; failures go to the log, never in the user's way.
   */
  private async addWhitened(name: string): Promise<void> {
    const model = this.session.model;
    const layer = this.session.layer(name);
    if (!(model instanceof OnnxModel) || !layer?.factorizable) return;
    const data = await calibrationData(this.session).catch(() => undefined);
    if (!data) return;
    const work = new AbortController();
    this.whitenedWork = work;
    try {
      this.busy(`Calibrating ${name} on ${basename(data.data)} for its whitened spectrum…`);
      const c = await calibrate(model, [layer], data, { signal: work.signal, cacheDir: defaultCalibrationCacheDir() });
      const groups = (await whitenedSpectraOf(model, [layer], { grams: c.grams }, { signal: work.signal })).get(name)!;
      if (work.signal.aborted) return;
      const sv = groups.length === 1 ? groups[0] : mergeDescending(groups);
      const series = toSeries(layer, { layer: name, hash: c.key, shape: layer.shape, singularValues: sv, metrics: spectrumMetrics(sv, layer.shape), ...(groups.length > 1 && { groups }) });
      await this.addSeries([{
        ...series, layer: `${name} · whitened`, factorizable: false,
        reason: `whitened spectrum: σ of W·S on ${c.samples} calibration samples (σ² = output energy); Compress Layer… → "Whitened" factorizes by it`,
      }]);
    } catch (e) {
      if (!work.signal.aborted) log().warn(`Whitened spectrum of ${name}: ${(e as Error).message}`);
    } finally {
      if (this.whitenedWork === work) this.busy(null);
    }
  }

  async addOverlays(layers: string[]): Promise<void> {
    await this.addSeries(await this.seriesOf(layers));
  }

  private async addSeries(series: SpectrumSeries[]): Promise<void> {
    if (this.shown) {
      const keep = this.shown.series.filter((s) => !series.some((n) => n.layer === s.layer));
      this.shown = { ...this.shown, series: [...keep, ...series] };
    }
    if (this.ready) this.endpoint?.notify(DidAddSeriesNotification, { series });
  }

  /** Clears the panel when the model closes or changes. */
  clear(): void {
    this.whitenedWork?.abort();
    this.shown = undefined;
    this.lastRank.clear();
    if (this.ready) this.endpoint?.notify(DidSetSeriesNotification, { series: [] });
  }

  dispose(): void {
    this.endpoint?.dispose();
  }

  private async seriesOf(layers: string[], signal?: AbortSignal): Promise<SpectrumSeries[]> {
    const spectra = await this.session.ensureSpectra(layers, signal);
    return spectra.map((s) => toSeries(this.session.layer(s.layer)!, s));
  }

  private busy(message: string | null): void {
    if (this.ready) this.endpoint?.notify(DidChangeBusyNotification, { message });
  }

  private async saveExport(p: { format: 'png' | 'svg' | 'csv'; suggestedName: string; contents: string; encoding: 'utf8' | 'base64' }) {
    const folder = this.session.path ? vscode.Uri.file(this.session.path) : vscode.workspace.workspaceFolders?.[0]?.uri;
    const safeName = basename(p.suggestedName).replace(/[^\w.\-]+/g, '_') || `spectrum.${p.format}`;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, '..', safeName) : undefined,
      filters: { [p.format.toUpperCase()]: [p.format] },
      saveLabel: 'Export',
    });
    if (!target) return { saved: null };
    await writeFileAtomic(target.fsPath, Buffer.from(p.contents, p.encoding), { inputs: [this.session.path] });
    log().info(`Exported spectrum ${p.format.toUpperCase()} to ${target.fsPath}`);
    return { saved: target.fsPath };
  }
}
