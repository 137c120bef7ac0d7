// Host of the trade-off panel (a WebviewPanel): accuracy against parameters / file size /
// latency for a sweep of compression levels, streamed point by point while the sweep runs, with
// progress (the sensitivity probes as a stage of their own) and cancel; a clicked point shows its
// plan, "Apply" writes that model. Every sweep is a result set of its own: kept in the extension's
// storage (`tradeoff/<key>.json`, one file per model + data + spec, so a sweep of another model or
// spec never replaces it), listed in the view and selectable.
// Protocol: webview/tradeoff/protocol.ts. The sweep itself is EVAL's (see commands/showTradeoff).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { HostEndpoint, ReadyCommand, type NotificationType } from '../../../webview/shared/ipc';
import {
  ApplyPointRequest, CancelSweepCommand, DidAddPointNotification, DidChangeProgressNotification, DidChangeSweepsNotification,
  DidFinishSweepNotification, DidSetPointsNotification, GetPlanRequest, RunSweepCommand, SelectSweepCommand,
  type OriginalModel, type PlanView, type SweepProgress, type SweepSummary, type TradeoffPoint, type TradeoffState,
} from '../../../webview/tradeoff/protocol';
import type { Plan } from '../../core/compress/plan';
import { progressText } from '../../core/eval/sweep';
import { ensureOutputFolder, writeFileAtomic } from '../../core/fs/atomicWrite';
import { isCancellation, log } from '../log';
import { htmlFor, webviewOptions } from './html';

export const tradeoffViewType = 'rankscope.tradeoff';

/** Kept sweeps beyond this many (oldest first) are dropped from storage. */
const MAX_KEPT = 30;

export interface SweepSink {
  original(model: OriginalModel): void;
  /** `plan` is the plan the point measured (shown on click, written by Apply). */
  point(point: TradeoffPoint, plan: Plan): void;
  progress(progress: SweepProgress): void;
  /** How the sensitivity probes ran (shown under the chart and kept with the set). */
  note(text: string): void;
}

/** Runs a sweep, feeding `sink`; rejects with CANCELLED when `signal` fires. */
export type SweepRunner = (signal: AbortSignal, sink: SweepSink) => Promise<void>;

/** A sweep ready to run: what it is (its key names the model file's identity, data and spec) and how. */
export interface PreparedSweep {
  /** Model + data + spec identity: a sweep with the same key replaces that result set. */
  key: string;
  title: string;
  /** The model swept (Apply writes from it). */
  model: string;
  spec: string;
  run: SweepRunner;
}

/** One result set: a sweep's points, plans and baseline. */
export interface SweepSet {
  id: string;
  title: string;
  model: string;
  spec: string;
  startedAt: number;
  status: SweepSummary['status'];
  original: OriginalModel | null;
  points: TradeoffPoint[];
  plans: Record<string, Plan>;
  note?: string;
}

export interface TradeoffHandlers {
  /** Prepares a sweep (asks for what it lacks, which model); undefined when the user backed out. */
  prepareSweep(): Promise<PreparedSweep | undefined>;
  /** Writes the point's plan (a plan over `model`); returns the written file. */
  apply(plan: Plan, point: TradeoffPoint, model: string): Promise<string>;
}

export class TradeoffPanels implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private endpoint?: HostEndpoint;
  private ready = false;
  /** Kept sweeps, newest first. */
  private sets: SweepSet[] = [];
  private shownId: string | null = null;
  private loaded = false;
  private sweep?: AbortController;
  private sweepDone: Promise<void> = Promise.resolve();
  /** How the last sweep ended (tests read it). */
  lastOutcome?: 'completed' | 'cancelled' | 'failed';
  /** The running sweep's latest progress (tests read it). */
  progress?: SweepProgress;
  handlers?: TradeoffHandlers;

  constructor(private readonly context: vscode.ExtensionContext) {}

  /** Points of the result set shown now (tests read them). */
  get points(): readonly TradeoffPoint[] {
    return this.shown?.points ?? [];
  }

  /** The set shown now. */
  get shown(): SweepSet | undefined {
    return this.sets.find((s) => s.id === this.shownId);
  }

  /** Every kept result set, newest first (tests read them). */
  get sweeps(): readonly SweepSet[] {
    this.load();
    return this.sets;
  }

  /** True once the panel's script ran and said `ready`. */
  get webviewReady(): boolean {
    return this.ready;
  }

  get running(): boolean {
    return this.sweep !== undefined;
  }

  /** Resolves when the running sweep (if any) ends. */
  whenSweepDone(): Promise<void> {
    return this.sweepDone;
  }

  show(): vscode.WebviewPanel {
    this.load();
    this.shownId ??= this.sets[0]?.id ?? null;
    if (this.panel) {
      this.panel.reveal();
      return this.panel;
    }
    const panel = vscode.window.createWebviewPanel(tradeoffViewType, 'Accuracy/Size Trade-off', vscode.ViewColumn.Active, {
      ...webviewOptions(this.context.extensionUri),
      retainContextWhenHidden: true,
    });
    this.attach(panel);
    return panel;
  }

  /** Restores the panel after a window reload (the kept sets come from storage; the webview restores its own view state). */
  registerSerializer(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(tradeoffViewType, {
      deserializeWebviewPanel: async (panel, state: TradeoffState | undefined) => {
        this.load();
        this.shownId = this.sets.find((s) => s.id === state?.sweepId)?.id ?? this.sets[0]?.id ?? null;
        panel.webview.options = webviewOptions(this.context.extensionUri);
        this.attach(panel);
      },
    });
  }

  /** Shows kept set `id` (the view's selector). */
  select(id: string): void {
    if (!this.sets.some((s) => s.id === id)) throw new Error(`No kept sweep ${id}.`);
    this.shownId = id;
    this.postShown();
    // The progress rows belong to the running sweep's set: shown with it, hidden with another.
    this.post(DidChangeProgressNotification, { progress: this.sweep && this.sets[0]?.status === 'running' && this.sets[0].id === id ? this.progress ?? null : null });
  }

  /** Runs a sweep in the panel as a new result set: progress in a notification (with Cancel) and in the view. */
  async runSweep(prepared: PreparedSweep): Promise<void> {
    this.cancel();
    await this.sweepDone;
    this.show();
    const controller = new AbortController();
    this.sweep = controller;
    // Same model + data + spec: this run re-measures that set (the point cache makes it quick); any other set stays.
    this.sets = this.sets.filter((s) => s.id !== prepared.key);
    const set: SweepSet = {
      id: prepared.key, title: prepared.title, model: prepared.model, spec: prepared.spec, startedAt: Date.now(), status: 'running',
      original: null, points: [], plans: {},
    };
    this.sets.unshift(set);
    this.shownId = set.id;
    this.postShown();
    let finishOutcome: 'completed' | 'cancelled' | 'failed' = 'completed';
    let error: string | undefined;
    const visible = () => this.shownId === set.id;
    this.sweepDone = Promise.resolve(vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Rankscope: sweep — ${prepared.title}`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => controller.abort());
        let last = 0;
        try {
          await prepared.run(controller.signal, {
            original: (o) => {
              set.original = o;
              if (visible()) this.post(DidSetPointsNotification, this.pointsOf(set));
            },
            point: (p, plan) => {
              set.plans[p.id] = plan;
              set.points.push(p);
              if (visible()) this.post(DidAddPointNotification, { point: p });
            },
            note: (text) => {
              set.note = text;
            },
            progress: (p) => {
              this.progress = p;
              const pct = p.total > 0 ? (100 * p.done) / p.total : 0;
              progress.report({ message: progressText(p), increment: pct - last });
              last = pct;
              if (visible()) this.post(DidChangeProgressNotification, { progress: p });
            },
          });
        } catch (e) {
          if (isCancellation(e) || controller.signal.aborted) finishOutcome = 'cancelled';
          else {
            finishOutcome = 'failed';
            error = (e as Error).message;
            log().error(`Sweep failed: ${(e as Error).stack ?? e}`);
            void vscode.window.showErrorMessage(`Rankscope: sweep failed. ${error}`, 'Show Log').then((c) => c && log().show(true));
          }
        } finally {
          if (this.sweep === controller) this.sweep = undefined;
          this.progress = undefined;
          set.status = finishOutcome;
          await this.store(set);
          this.post(DidChangeProgressNotification, { progress: null });
          this.lastOutcome = finishOutcome;
          this.postShown();
          this.post(DidFinishSweepNotification, { outcome: finishOutcome, error });
          log().info(`Sweep ${finishOutcome}: ${set.points.length} points (${set.title}; ${set.spec})`);
        }
      },
    ));
    return this.sweepDone;
  }

  cancel(): void {
    this.sweep?.abort();
  }

  /** Writes the model of point `id` of the shown set (the "Apply" button). */
  async apply(id: string): Promise<{ file: string }> {
    const set = this.shown;
    const plan = set?.plans[id];
    const point = set?.points.find((p) => p.id === id);
    if (!set || !plan || !point || !this.handlers) throw new Error(`No plan for point ${id}; run the sweep again.`);
    return { file: await this.handlers.apply(plan, point, set.model) };
  }

  dispose(): void {
    this.cancel();
    this.panel?.dispose();
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    const endpoint = new HostEndpoint((m) => panel.webview.postMessage(m), (e) => log().warn(`Trade-off view: dropped message: ${e.message}`));
    this.endpoint = endpoint;
    endpoint
      .onCommand(ReadyCommand, () => {
        this.ready = true;
        this.postShown();
      })
      .onCommand(RunSweepCommand, async () => {
        const prepared = await this.handlers?.prepareSweep();
        if (prepared) await this.runSweep(prepared);
      })
      .onCommand(CancelSweepCommand, () => this.cancel())
      .onCommand(SelectSweepCommand, ({ id }) => this.select(id))
      .onRequest(GetPlanRequest, ({ pointId }) => this.planView(pointId))
      .onRequest(ApplyPointRequest, ({ pointId }) => this.apply(pointId));
    panel.webview.onDidReceiveMessage((m) => endpoint.receive(m));
    panel.onDidDispose(() => {
      endpoint.dispose();
      this.cancel();
      if (this.panel === panel) {
        this.panel = undefined;
        this.endpoint = undefined;
      }
    });
    panel.iconPath = vscode.Uri.joinPath(this.context.extensionUri, 'media', 'rankscope.svg');
    panel.webview.html = htmlFor(panel.webview, this.context.extensionUri, 'tradeoff', 'Accuracy/Size Trade-off');
  }

  /** The list and the shown set, to the view. */
  private postShown(): void {
    this.post(DidChangeSweepsNotification, { sweeps: this.sets.map(summary), shown: this.shownId });
    const set = this.shown;
    if (set) this.post(DidSetPointsNotification, this.pointsOf(set));
    else this.post(DidSetPointsNotification, { points: [], original: null, title: '' });
  }

  private pointsOf(set: SweepSet): { points: TradeoffPoint[]; original: OriginalModel | null; title: string; sweepId: string; note?: string } {
    return { points: set.points, original: set.original, title: set.title, sweepId: set.id, ...(set.note && { note: set.note }) };
  }

  private planView(pointId: string): PlanView {
    const set = this.shown;
    const plan = set?.plans[pointId];
    const point = set?.points.find((p) => p.id === pointId);
    if (!plan || !point) throw new Error(`No plan for point ${pointId}.`);
    return {
      pointId,
      label: point.label,
      allocation: point.allocation,
      method: point.method ?? 'svd',
      paramsBefore: plan.totals.modelParamsBefore,
      paramsAfter: plan.totals.modelParamsAfter,
      layers: plan.layers.map((l) => ({
        layer: l.layer, shape: l.shape, rank: l.skipped ? undefined : l.k,
        paramsBefore: l.paramsBefore, paramsAfter: l.skipped ? l.paramsBefore : l.paramsAfter,
        energyKept: l.energyKept, skipped: l.skipped ? l.reason ?? 'kept dense' : undefined,
      })),
    };
  }

  private post<P>(type: NotificationType<P>, params: P): void {
    if (this.ready) this.endpoint?.notify(type, params);
  }

  /** Where the kept sweeps are stored, one `<key>.json` each. */
  get storageDir(): string {
    return join((this.context.storageUri ?? this.context.globalStorageUri).fsPath, 'tradeoff');
  }

  /** Reads the kept sets once (a damaged file is skipped and said in the log). */
  private load(): void {
    if (this.loaded) return;
    this.loaded = true;
    let files: string[] = [];
    try {
      files = readdirSync(this.storageDir).filter((f) => f.endsWith('.json'));
    } catch {
      return; // nothing kept yet
    }
    const stored: SweepSet[] = [];
    for (const f of files) {
      try {
        const set = JSON.parse(readFileSync(join(this.storageDir, f), 'utf8')) as SweepSet;
        if (set.id && Array.isArray(set.points) && set.plans) stored.push(set);
      } catch (e) {
        log().warn(`Trade-off: skipped the kept sweep ${f}: ${(e as Error).message}`);
      }
    }
    const running = this.sets;
    this.sets = [...running, ...stored.filter((s) => !running.some((r) => r.id === s.id)).sort((a, b) => b.startedAt - a.startedAt)];
  }

  /** Keeps `set` (temp file + rename); drops the oldest beyond MAX_KEPT. */
  private async store(set: SweepSet): Promise<void> {
    try {
      ensureOutputFolder(this.storageDir);
      await writeFileAtomic(join(this.storageDir, `${set.id}.json`), JSON.stringify(set));
      for (const old of this.sets.slice(MAX_KEPT)) rmSync(join(this.storageDir, `${old.id}.json`), { force: true });
      this.sets = this.sets.slice(0, MAX_KEPT);
    } catch (e) {
      log().warn(`Trade-off: could not keep the sweep ${set.title}: ${(e as Error).message}`);
    }
  }
}

function summary(s: SweepSet): SweepSummary {
  return { id: s.id, title: s.title, spec: s.spec, startedAt: s.startedAt, status: s.status, points: s.points.length };
}
