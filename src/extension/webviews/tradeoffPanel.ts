// Host of the trade-off panel (a WebviewPanel): accuracy against parameters / file size /
// latency for a sweep of compression levels, streamed point by point while the sweep runs, with
// progress and cancel; a clicked point shows its plan, "Apply" writes that model.
// Protocol: webview/tradeoff/protocol.ts. The sweep itself is EVAL's (see commands/showTradeoff).
import * as vscode from 'vscode';
import { HostEndpoint, ReadyCommand } from '../../../webview/shared/ipc';
import {
  ApplyPointRequest, CancelSweepCommand, DidAddPointNotification, DidChangeProgressNotification, DidFinishSweepNotification,
  DidSetPointsNotification, GetPlanRequest, RunSweepCommand,
  type OriginalModel, type PlanView, type SweepProgress, type TradeoffPoint, type TradeoffState,
} from '../../../webview/tradeoff/protocol';
import type { Plan } from '../../core/compress/plan';
import { isCancellation, log } from '../log';
import { htmlFor, webviewOptions } from './html';

export const tradeoffViewType = 'rankscope.tradeoff';

export interface SweepSink {
  original(model: OriginalModel): void;
  /** `plan` is the plan the point measured (shown on click, written by Apply). */
  point(point: TradeoffPoint, plan: Plan): void;
  progress(progress: SweepProgress): void;
}

/** Runs a sweep, feeding `sink`; rejects with CANCELLED when `signal` fires. */
export type SweepRunner = (signal: AbortSignal, sink: SweepSink) => Promise<void>;

export interface TradeoffHandlers {
  /** Starts a sweep for the open model (asks for what it lacks); undefined when the user backed out. */
  prepareSweep(): Promise<{ title: string; run: SweepRunner } | undefined>;
  /** Writes the point's plan; returns the written file. */
  apply(plan: Plan, point: TradeoffPoint): Promise<string>;
}

export class TradeoffPanels implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private endpoint?: HostEndpoint;
  private ready = false;
  private state: { title: string; points: TradeoffPoint[]; original: OriginalModel | null } = { title: '', points: [], original: null };
  private readonly plans = new Map<string, Plan>();
  private sweep?: AbortController;
  private sweepDone: Promise<void> = Promise.resolve();
  /** How the last sweep ended (tests read it). */
  lastOutcome?: 'completed' | 'cancelled' | 'failed';
  handlers?: TradeoffHandlers;

  constructor(private readonly context: vscode.ExtensionContext) {}

  /** Points shown now (tests read them). */
  get points(): readonly TradeoffPoint[] {
    return this.state.points;
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

  /** Restores the panel after a window reload (the webview restores its own state). */
  registerSerializer(): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(tradeoffViewType, {
      deserializeWebviewPanel: async (panel, state: TradeoffState | undefined) => {
        if (state?.version === 1) this.state = { title: state.title, points: state.points, original: state.original };
        panel.webview.options = webviewOptions(this.context.extensionUri);
        this.attach(panel);
      },
    });
  }

  /** Runs a sweep in the panel: progress in a notification (with Cancel) and in the view. */
  async runSweep(title: string, run: SweepRunner): Promise<void> {
    this.cancel();
    await this.sweepDone;
    this.show();
    const controller = new AbortController();
    this.sweep = controller;
    this.plans.clear();
    this.state = { title, points: [], original: null };
    this.post(DidSetPointsNotification, this.state);
    let finishOutcome: 'completed' | 'cancelled' | 'failed' = 'completed';
    let error: string | undefined;
    this.sweepDone = Promise.resolve(vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Rankscope: sweep — ${title}`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => controller.abort());
        let last = 0;
        try {
          await run(controller.signal, {
            original: (o) => {
              this.state.original = o;
              this.post(DidSetPointsNotification, this.state);
            },
            point: (p, plan) => {
              this.plans.set(p.id, plan);
              this.state.points.push(p);
              this.post(DidAddPointNotification, { point: p });
            },
            progress: (p) => {
              const pct = p.total > 0 ? (100 * p.done) / p.total : 0;
              progress.report({ message: `${p.done}/${p.total} ${p.message}`, increment: pct - last });
              last = pct;
              this.post(DidChangeProgressNotification, { progress: p });
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
          this.post(DidChangeProgressNotification, { progress: null });
          this.lastOutcome = finishOutcome;
          this.post(DidFinishSweepNotification, { outcome: finishOutcome, error });
          log().info(`Sweep ${finishOutcome}: ${this.state.points.length} points`);
        }
      },
    ));
    return this.sweepDone;
  }

  cancel(): void {
    this.sweep?.abort();
  }

  /** Writes the model of point `id` (the "Apply" button). */
  async apply(id: string): Promise<{ file: string }> {
    const plan = this.plans.get(id);
    const point = this.state.points.find((p) => p.id === id);
    if (!plan || !point || !this.handlers) throw new Error(`No plan for point ${id}; run the sweep again.`);
    return { file: await this.handlers.apply(plan, point) };
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
        if (this.state.title || this.state.points.length) endpoint.notify(DidSetPointsNotification, this.state);
      })
      .onCommand(RunSweepCommand, async () => {
        const prepared = await this.handlers?.prepareSweep();
        if (prepared) await this.runSweep(prepared.title, prepared.run);
      })
      .onCommand(CancelSweepCommand, () => this.cancel())
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

  private planView(pointId: string): PlanView {
    const plan = this.plans.get(pointId);
    const point = this.state.points.find((p) => p.id === pointId);
    if (!plan || !point) throw new Error(`No plan for point ${pointId}.`);
    return {
      pointId,
      label: point.label,
      allocation: point.allocation,
      paramsBefore: plan.totals.modelParamsBefore,
      paramsAfter: plan.totals.modelParamsAfter,
      layers: plan.layers.map((l) => ({
        layer: l.layer, shape: l.shape, rank: l.skipped ? undefined : l.k,
        paramsBefore: l.paramsBefore, paramsAfter: l.skipped ? l.paramsBefore : l.paramsAfter,
        energyKept: l.energyKept, skipped: l.skipped ? l.reason ?? 'kept dense' : undefined,
      })),
    };
  }

  private post<P>(type: import('../../../webview/shared/ipc').NotificationType<P>, params: P): void {
    if (this.ready) this.endpoint?.notify(type, params);
  }
}
