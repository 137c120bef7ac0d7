// Fine-tune view (a WebviewPanel) ⇄ extension host.
//
// The host runs the Python worker (src/worker FinetuneWorker) and forwards its progress events
// here: live training loss per step, accuracy per epoch, progress, and a summary at the end.
import { command, is, noParams, notification } from '../shared/ipc';

const scope = 'finetune';

export interface FinetuneRun {
  /** Compressed model being fine-tuned (file name, shown as caption). */
  model: string;
  /** Where the fine-tuned model will be written. */
  output: string;
  device: string;
  epochs: number;
  stepsPerEpoch: number;
  /** Accuracy of the compressed model before fine-tuning, when measured. */
  baselineAccuracy?: number;
}

export interface StepPoint {
  epoch: number;
  /** Global step (0-based, across epochs). */
  step: number;
  loss: number;
  lr?: number;
}

export interface EpochPoint {
  epoch: number;
  trainAccuracy?: number;
  valAccuracy: number;
  valLoss?: number;
}

export interface FinetuneSummary {
  bestEpoch: number;
  bestAccuracy: number;
  finalAccuracy: number;
  seconds: number;
  /** The written model (present when completed). */
  output?: string;
}

export type FinetuneStatus = 'idle' | 'running' | 'completed' | 'cancelled' | 'failed';

// ---------- host → webview ----------

/** A new run starts: clears the curves. */
export const DidStartNotification = notification<{ run: FinetuneRun }>(scope, 'didStart');
/** Steps batched by the host (at most ~10 per second are worth drawing). */
export const DidStepNotification = notification<{ steps: StepPoint[] }>(scope, 'didStep');
export const DidEpochNotification = notification<{ epoch: EpochPoint }>(scope, 'didEpoch');
export const DidFinishNotification = notification<{
  status: Exclude<FinetuneStatus, 'idle' | 'running'>;
  summary?: FinetuneSummary;
  error?: string;
}>(scope, 'didFinish');

// ---------- webview → host ----------

export const CancelCommand = command(scope, 'cancel', noParams);
/** Open the written model in the Layers tree. */
export const OpenOutputCommand = command(scope, 'openOutput', is.object({ file: is.string({ max: 4096 }) }));

// ---------- state ----------

export interface FinetuneState {
  version: 1;
  run: FinetuneRun | null;
  status: FinetuneStatus;
  steps: StepPoint[];
  epochs: EpochPoint[];
  summary: FinetuneSummary | null;
  error: string | null;
}
