// Fine-tune view (a WebviewPanel) ⇄ extension host.
//
// The host runs the Python worker (src/worker FinetuneWorker) and forwards its progress events
// here: live training loss per step, accuracy per epoch, progress, and a summary at the end.
// Numbers follow the worker's one convention (src/worker/protocol.ts): epochs are 1-based and
// epoch 0 is "before fine-tuning"; steps count the steps done. The view shows them as given.
import { command, is, noParams, notification } from '../shared/ipc';

const scope = 'finetune';

export interface FinetuneRun {
  /** Compressed model being fine-tuned (file name, shown as caption). */
  model: string;
  /** Where the fine-tuned model will be written. */
  output: string;
  epochs: number;
  /** Known once the worker started (unset while it starts). */
  device?: string;
  stepsPerEpoch?: number;
  /** Where the validation and the test figures come from, in words (src/worker/splits.ts). */
  validation?: string;
  test?: string;
  /** This run continues a checkpoint: how far the earlier run got. */
  resumed?: string;
}

export interface StepPoint {
  /** The running epoch, 1-based. */
  epoch: number;
  /** Steps done since the start of training (1 … epochs × stepsPerEpoch). */
  step: number;
  loss: number;
  lr?: number;
}

export interface EpochPoint {
  /** 1-based; 0 = the model before fine-tuning (validation only). */
  epoch: number;
  trainAccuracy?: number;
  /** On the validation split. */
  valAccuracy: number;
  valLoss?: number;
}

/** null = not measured (say why rather than show 0). */
export interface FinetuneSummary {
  /** Epoch of the best validation accuracy; 0 = before fine-tuning (no epoch beat the model as given). */
  bestEpoch: number | null;
  bestAccuracy: number | null;
  /** Validation accuracy of the last finished epoch. */
  finalAccuracy: number | null;
  /** The test split, scored once with the best weights. */
  testAccuracy: number | null;
  /** Why there is no test figure. */
  testNote?: string;
  seconds: number;
  /** The written model (present when completed). */
  output?: string;
  /** A cancelled or failed run's checkpoint (then the view offers Resume). */
  checkpoint?: string;
}

export type FinetuneStatus = 'idle' | 'running' | 'completed' | 'cancelled' | 'failed';

// ---------- host → webview ----------

/** A new run starts (before the worker is up): clears the curves, the summary and any error. */
export const DidStartNotification = notification<{ run: FinetuneRun }>(scope, 'didStart');
/** The worker started: the run's device, steps and splits (keeps the curves). */
export const DidDescribeRunNotification = notification<{ run: FinetuneRun }>(scope, 'didDescribeRun');
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
/** Continue the cancelled or failed run from its checkpoint ("Rankscope: Resume Fine-tuning…"). */
export const ResumeCommand = command(scope, 'resume', noParams);

// ---------- state ----------

export interface FinetuneState {
  version: 2;
  run: FinetuneRun | null;
  status: FinetuneStatus;
  steps: StepPoint[];
  epochs: EpochPoint[];
  summary: FinetuneSummary | null;
  error: string | null;
}
