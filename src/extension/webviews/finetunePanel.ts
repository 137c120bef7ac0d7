// Host of the fine-tune view (a WebviewPanel): live training loss per step, accuracy per epoch
// (epoch 0 = before fine-tuning), the splits, and the summary, from the worker's messages. A run
// clears the view when it starts (before the worker is up), so a failure shows in a clean view.
// Protocol: webview/finetune/protocol.ts.
import * as vscode from 'vscode';
import { HostEndpoint, ReadyCommand, type NotificationType } from '../../../webview/shared/ipc';
import {
  CancelCommand, DidDescribeRunNotification, DidEpochNotification, DidFinishNotification, DidStartNotification, DidStepNotification,
  OpenOutputCommand, ResumeCommand, type EpochPoint, type FinetuneRun, type FinetuneState, type FinetuneSummary, type StepPoint,
} from '../../../webview/finetune/protocol';
import { log } from '../log';
import { htmlFor, webviewOptions } from './html';

export class FinetunePanels implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private endpoint?: HostEndpoint;
  private ready = false;
  private pendingSteps: StepPoint[] = [];
  private flushTimer?: NodeJS.Timeout;
  /** Everything sent for the current run, replayed when the webview (re)loads. */
  private state: FinetuneState = { version: 2, run: null, status: 'idle', steps: [], epochs: [], summary: null, error: null };
  /** Set while a run is in progress: the panel's Cancel aborts it. */
  cancelRun?: () => void;
  /** Set when the last run ended with a checkpoint to continue: the panel's Resume runs it. */
  resumeRun?: () => void;

  constructor(private readonly context: vscode.ExtensionContext) {}

  /** True once the view's script ran and said `ready`. */
  get webviewReady(): boolean {
    return this.ready;
  }

  get current(): Readonly<FinetuneState> {
    return this.state;
  }

  /** A new run: clears the view (curves, summary, error) before anything of the run is known. */
  start(run: FinetuneRun): void {
    this.show();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.pendingSteps = [];
    this.resumeRun = undefined;
    this.state = { version: 2, run, status: 'running', steps: [], epochs: [], summary: null, error: null };
    this.post(DidStartNotification, { run });
  }

  /** What the worker said when it started (device, steps, splits). */
  describe(run: FinetuneRun): void {
    this.state.run = run;
    this.post(DidDescribeRunNotification, { run });
  }

  step(point: StepPoint): void {
    this.state.steps.push(point);
    this.pendingSteps.push(point);
    // The chart needs at most ~10 updates a second.
    this.flushTimer ??= setTimeout(() => this.flush(), 100);
  }

  epoch(point: EpochPoint): void {
    this.flush();
    this.state.epochs.push(point);
    this.post(DidEpochNotification, { epoch: point });
  }

  finish(status: 'completed' | 'cancelled' | 'failed', summary?: FinetuneSummary, error?: string): void {
    this.flush();
    this.state.status = status;
    this.state.summary = summary ?? null;
    this.state.error = error ?? null;
    this.cancelRun = undefined;
    this.post(DidFinishNotification, { status, summary, error });
  }

  dispose(): void {
    this.panel?.dispose();
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingSteps.length === 0) return;
    const steps = this.pendingSteps;
    this.pendingSteps = [];
    this.post(DidStepNotification, { steps });
  }

  private show(): void {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const panel = vscode.window.createWebviewPanel('rankscope.finetune', 'Fine-tuning', { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true }, {
      ...webviewOptions(this.context.extensionUri),
      retainContextWhenHidden: true,
    });
    this.panel = panel;
    this.ready = false;
    const endpoint = new HostEndpoint((m) => panel.webview.postMessage(m), (e) => log().warn(`Fine-tune view: dropped message: ${e.message}`));
    this.endpoint = endpoint;
    endpoint
      .onCommand(ReadyCommand, () => {
        this.ready = true;
        this.replay();
      })
      .onCommand(CancelCommand, () => this.cancelRun?.())
      .onCommand(ResumeCommand, () => this.resumeRun?.())
      .onCommand(OpenOutputCommand, async ({ file }) => {
        // Only a file this run wrote: the webview's message is untrusted input.
        if (file !== this.state.summary?.output) return;
        await vscode.commands.executeCommand('rankscope.openModel', file);
      });
    panel.webview.onDidReceiveMessage((m) => endpoint.receive(m));
    panel.onDidDispose(() => {
      endpoint.dispose();
      if (this.panel === panel) {
        this.panel = undefined;
        this.endpoint = undefined;
      }
    });
    panel.iconPath = vscode.Uri.joinPath(this.context.extensionUri, 'media', 'rankscope.svg');
    panel.webview.html = htmlFor(panel.webview, this.context.extensionUri, 'finetune', 'Fine-tuning');
  }

  private replay(): void {
    const s = this.state;
    if (!s.run) return;
    this.post(DidStartNotification, { run: s.run });
    if (s.steps.length) this.post(DidStepNotification, { steps: s.steps });
    for (const epoch of s.epochs) this.post(DidEpochNotification, { epoch });
    if (s.status === 'completed' || s.status === 'cancelled' || s.status === 'failed') {
      this.post(DidFinishNotification, { status: s.status, summary: s.summary ?? undefined, error: s.error ?? undefined });
    }
  }

  private post<P>(type: NotificationType<P>, params: P): void {
    if (this.ready) this.endpoint?.notify(type, params);
  }
}
