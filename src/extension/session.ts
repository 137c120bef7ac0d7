// The model the user has open, and its spectra as they come in. One per window: the tree, the
// status bar, the spectrum panel and every command read it; only `open`/`close` change it. The
// work is the core's (openModel, compress/spectra.ts layerSpectra, model/params.ts); this class
// keeps the results, runs the background pass, and fires the events.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { RankscopeError, throwIfCancelled } from '../core/errors';
import { layerSpectra } from '../core/compress/spectra';
import { loadDataset, type Dataset } from '../core/eval/dataset';
import { measureMacs, type MacsResult } from '../core/eval/macs';
import { OrtRunner } from '../core/eval/runner';
import { resolveTask } from '../core/eval/task';
import type { LayerSpectrum } from '../core/linalg';
import { openModel } from '../core/formats';
import { OnnxModel } from '../core/formats/onnx';
import { paramTotals, type ParamTotals } from '../core/model/params';
import type { Layer, Model } from '../core/model/types';
import { readWorkspaceTask } from './evalTask';
import { log } from './log';
import { settings } from './settings';

export class ModelSession implements vscode.Disposable {
  private current?: { path: string; model: Model };
  private readonly spectra = new Map<string, LayerSpectrum>();
  private background?: AbortController;
  private backgroundDone: Promise<void> = Promise.resolve();
  private readonly modelChanged = new vscode.EventEmitter<Model | undefined>();
  private readonly spectraChanged = new vscode.EventEmitter<LayerSpectrum[]>();
  /** Fires after a model is opened or closed. */
  readonly onDidChangeModel = this.modelChanged.event;
  /** Fires as spectra arrive (batched per layer). */
  readonly onDidUpdateSpectra = this.spectraChanged.event;
  private macsResult?: MacsResult;
  private readonly macsChanged = new vscode.EventEmitter<MacsResult>();
  /** Fires once the open model's MACs are measured (or found unmeasurable). */
  readonly onDidMeasureMacs = this.macsChanged.event;

  constructor(private readonly storage: vscode.Uri) {}

  get model(): Model | undefined {
    return this.current?.model;
  }

  get path(): string | undefined {
    return this.current?.path;
  }

  layer(name: string): Layer | undefined {
    return this.current?.model.layers.find((l) => l.name === name);
  }

  spectrum(layer: string): LayerSpectrum | undefined {
    return this.spectra.get(layer);
  }

  /** The open model's MACs per sample (core/eval/macs.ts); undefined until measured. */
  get macs(): MacsResult | undefined {
    return this.macsResult;
  }

  /** Opens a model (replacing the open one) and starts computing all spectra in the background. */
  async open(path: string, signal?: AbortSignal): Promise<Model> {
    const t0 = performance.now();
    const model = await openModel(path, { signal });
    throwIfCancelled(signal);
    this.stopBackground();
    this.current = { path, model };
    this.spectra.clear();
    this.macsResult = undefined;
    log().info(`Opened ${path}: ${model.layers.length} layers, ${model.summary.totalParams} parameters (${(performance.now() - t0).toFixed(0)} ms)`);
    await vscode.commands.executeCommand('setContext', 'rankscope.modelOpen', true);
    this.modelChanged.fire(model);
    this.startBackground(model);
    void this.measureMacs(model, path);
    return model;
  }

  async close(): Promise<void> {
    this.stopBackground();
    this.current = undefined;
    this.spectra.clear();
    this.macsResult = undefined;
    await vscode.commands.executeCommand('setContext', 'rankscope.modelOpen', false);
    this.modelChanged.fire(undefined);
  }

  /** Spectra of `layers` (dense or factorized), computing the missing ones now, ahead of the background run. */
  async ensureSpectra(layers: string[], signal?: AbortSignal): Promise<LayerSpectrum[]> {
    const model = this.requireModel();
    const missing = layers.filter((l) => !this.spectra.has(l));
    if (missing.length > 0) {
      await layerSpectra(model, { layers: missing, order: 'size', signal, cacheDir: this.cacheDir(), onResult: (s) => this.accept(model, s) });
    }
    return layers.map((l) => {
      const s = this.spectra.get(l);
      if (!s) throw new Error(`no spectrum computed for layer '${l}'`);
      return s;
    });
  }

  /** Resolves when the background run for the open model finished (or was stopped). */
  whenSpectraSettled(): Promise<void> {
    return this.backgroundDone;
  }

  requireModel(): Model {
    if (!this.current) throw new RankscopeError('NOT_FOUND', 'No model is open.', 'Open one with "Rankscope: Open Model…".');
    return this.current.model;
  }

  totals(): ParamTotals | undefined {
    return this.current && paramTotals(this.current.model);
  }

  dispose(): void {
    this.stopBackground();
    this.modelChanged.dispose();
    this.spectraChanged.dispose();
    this.macsChanged.dispose();
  }

  /**
   * One ONNX Runtime run (its own thread) for the shapes the MACs are counted at: the first sample
   * of the workspace task's data when it fits the model, else the declared input shape. No signal
   * for the runner: aborting one mid-run terminates a thread inside native code.
   */
  private async measureMacs(model: Model, path: string): Promise<void> {
    const settle = (r: MacsResult) => {
      if (this.current?.model !== model) return;
      this.macsResult = r;
      this.macsChanged.fire(r);
    };
    if (!(model instanceof OnnxModel)) return settle({ ok: false, reason: 'a state dict has no graph to run, so the shapes its layers run at are unknown' });
    const runner = OrtRunner.create({});
    let dataset: Dataset | undefined;
    try {
      const task = await readWorkspaceTask(path).catch(() => undefined);
      const spec = task?.task.data ? resolveTask(task.task).dataset : undefined;
      if (spec) {
        const probe = await runner.open(path);
        dataset = await loadDataset({ ...spec, labels: null }, probe.inputs).catch((e: Error) => {
          log().info(`MACs of ${path}: the task's data does not fit the model (${e.message}); counting at the declared input shape.`);
          return undefined;
        });
        await probe.close();
      }
      const r = await measureMacs(model, { runner, dataset });
      log().info(r.ok ? `MACs of ${path}: ${r.total} per sample (${r.input.source === 'data' ? 'data sample' : 'declared input shape'})` : `MACs of ${path}: not measured (${r.reason})`);
      settle(r);
    } catch (e) {
      settle({ ok: false, reason: (e as Error).message });
    } finally {
      await dataset?.close();
      await runner.dispose();
    }
  }

  private accept(model: Model, s: LayerSpectrum): void {
    if (this.current?.model !== model) return; // a late result for a model since closed
    this.spectra.set(s.layer, s);
    this.spectraChanged.fire([s]);
  }

  private startBackground(model: Model): void {
    const controller = new AbortController();
    this.background = controller;
    // Dense layers only: a factorized layer's spectrum (of A·B) is computed when asked for.
    const layers = model.layers.filter((l) => l.factorizable && !l.compressed).map((l) => l.name);
    if (layers.length === 0) return;
    const t0 = performance.now();
    this.backgroundDone = Promise.resolve(vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'Rankscope: spectra' },
      async (progress) => {
        let done = 0;
        try {
          await layerSpectra(model, {
            layers, order: 'size', signal: controller.signal, cacheDir: this.cacheDir(),
            onResult: (s) => {
              done++;
              progress.report({ message: `${done}/${layers.length}` });
              this.accept(model, s);
            },
          });
          log().info(`Spectra of ${layers.length} layers in ${(performance.now() - t0).toFixed(0)} ms`);
        } catch (e) {
          if (!controller.signal.aborted) log().error(`Computing spectra failed: ${(e as Error)?.stack ?? e}`);
        }
      },
    ));
  }

  private stopBackground(): void {
    this.background?.abort();
    this.background = undefined;
  }

  /** Where spectra are cached (undefined: caching off by setting). */
  cacheDir(): string | undefined {
    const s = settings();
    if (s.cacheMaxSizeMB === 0) return undefined;
    const dir = s.cacheLocation || join(this.storage.fsPath, 'spectra');
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}
