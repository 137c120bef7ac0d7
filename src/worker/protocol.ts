// The fine-tuning worker's protocol: newline-delimited JSON on the worker's stdin/stdout, one
// object per line with a `type`. This file is the ONE typed definition; the Python side
// (src/worker/python/rankscope_worker/protocol.py, __main__.py, trainer.py) sends exactly these.
// Bump PROTOCOL_VERSION (here and in rankscope_worker/__init__.py) when a shape changes.
//
// Order: worker → hello; client → start; worker → started, eval(before), then progress* and
// eval/checkpoint per epoch, eval(test) once after the last epoch, log at any time, and finally
// done or error. The client may send cancel at any time (the worker checkpoints at the next step
// and answers done{status:'cancelled'}) and exit when it is finished with the process.
//
// One epoch convention everywhere: a field named `epoch` is an epoch's 1-based number (epoch 1 is
// the first epoch of training) and 0 means "before fine-tuning"; `globalStep` counts optimizer steps
// done; a checkpoint counts the epochs done (`epochsDone`) and the steps done of the next (`step`).
// Show epoch numbers as they are: no +1 anywhere.
//
// Splits: the best epoch is picked on VALIDATION (held out from the training arrays unless a
// validation file is given); TEST is scored once, at the end, with the best weights. Every figure's
// name says its split (valAccuracy…, testAccuracy…, trainLoss…); `splits` says where each comes from.

export const PROTOCOL_VERSION = 2;

// ---- client → worker ----------------------------------------------------------------------------

export interface StartMessage { type: 'start'; config: FinetuneConfig | ModuleFinetuneConfig }
export interface CancelMessage { type: 'cancel' }
export interface ExitMessage { type: 'exit' }
export type ClientMessage = StartMessage | CancelMessage | ExitMessage;

/** Where the training data is; arrays read by numpy on the worker side. */
export interface DataSpec {
  /** .npz with the training and (by default) the test arrays; validation is held out of training. */
  path: string;
  /** Array names; defaults x_train, y_train, x_test, y_test (DESIGN.md's skeleton convention). */
  trainX?: string;
  trainY?: string;
  testX?: string;
  testY?: string;
  /**
   * An explicit validation split instead of the hold-out: a separate .npz (`valPath`) and/or
   * array names (`valX`/`valY`, default x_test/y_test in `valPath`, or arrays of `path`).
   */
  valPath?: string;
  valX?: string;
  valY?: string;
  /**
   * Training subject ids (one per training sample) to hold out whole subjects; default `s_train`
   * under the NTU preset (a stratified random split, with a note, when the file has none).
   */
  subjects?: string;
  /** 'ntu': x (N, T, 150) → (N, 3, T', 25, 2) with src/core/eval/ntu.ts's resampling. */
  preset?: 'ntu' | null;
  ntu?: { frames?: number; crop?: number; resample?: 'linear' | 'uniform' };
}

export interface GraphFiles {
  /** `<name>.graph.json` written by graphExport.ts. */
  graph: string;
  /** Its `.safetensors`; default: the file named in the graph JSON's `weights`, same folder. */
  weights?: string;
}

/** Knowledge distillation: loss = alpha·KL(student/T ‖ teacher/T)·T² + (1 − alpha)·cross-entropy. */
export interface KdOptions { temperature: number; alpha: number }

/** How to train. TRAINING_DEFAULTS (trainingOptions.ts) is the one set of defaults. */
export interface TrainingOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adamw' | 'sgd';
  /** SGD (always Nesterov). */
  momentum: number;
  weightDecay: number;
  /** Linear warm-up length in epochs (fractions allowed), then `schedule`. */
  warmupEpochs: number;
  schedule: 'cosine' | 'step' | 'constant';
  /** Step decay: multiply by `gamma` every `stepEpochs`. */
  stepEpochs: number;
  gamma: number;
  /** Max gradient norm; 0 = off. */
  gradClip: number;
  seed: number;
  /** 'lowrank': only the factors Rankscope wrote and the biases. */
  trainable: 'all' | 'lowrank';
  /** 'auto' | 'cpu' | 'cuda:N' | 'mps'. */
  device: string;
  /** CUDA autocast; 'auto' = bf16 where supported, else fp16. */
  amp: 'auto' | 'bf16' | 'fp16' | 'off';
  /** Distillation from `teacher` (null: labels only). */
  kd: KdOptions | null;
  /** Validation samples whose outputs the worker records for the write-back check. */
  probeSamples: number;
  evalBatchSize: number;
  /** Seconds between progress messages. */
  progressEvery: number;
  /** torch.compile the training forward (torch ≥ 2; ignored with a warning before). */
  compile: boolean;
  /** Share of the training samples held out for validation (seeded by `seed`), unless DataSpec names a validation split. */
  valFraction: number;
}

/** The `start` message's config: every training option filled in, plus where things are. */
export interface FinetuneConfig extends GraphFiles, TrainingOptions {
  data: DataSpec;
  /** Uncompressed original for knowledge distillation; run by the same executor. */
  teacher?: GraphFiles | null;
  /** Folder for checkpoint.pt, best.safetensors, probe.safetensors, summary.json. */
  outDir: string;
  /** checkpoint.pt to continue from. */
  resume?: string | null;
}

/** Fine-tuning the user's own PyTorch module (src/worker/finetuneModule.ts; rankscope_worker/torch_source.py). */
export interface ModuleSpec {
  /** `package.module:function` (the function part may be dotted) that builds the nn.Module. */
  factory: string;
  /** Folder put first on sys.path to import the factory from. */
  factoryPath: string | null;
  /** Keyword arguments for the factory. */
  factoryArgs: Record<string, unknown> | null;
  /** The dense checkpoint as safetensors, keys unwrapped (exported from the .pt by finetuneModule.ts). */
  stateDict: string;
  /** The factors file of `rankscope compress model.pt` (rankscope_torch.apply_factors reads it). */
  factors: string;
  /** Distil from the dense module (the checkpoint alone). */
  teacher: boolean;
  /** Where the worker writes the fine-tuned state dict of the factorized module (in the work folder). */
  result: { path: string; format: 'pt' | 'safetensors'; metadata: Record<string, string> | null };
  /** Reload the written result into a freshly built module and compare its outputs with the probe's. */
  verify: boolean;
}

/** The `start` config of a run on the user's module: the training options and data as for a graph. */
export interface ModuleFinetuneConfig extends TrainingOptions {
  data: DataSpec;
  module: ModuleSpec;
  outDir: string;
  resume?: string | null;
}

// ---- worker → client ----------------------------------------------------------------------------

export interface CudaDevice { index: number; name: string; totalMemory: number; capability: string }

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  worker: string;
  python: string;
  executable: string;
  platform: string;
  torch: string;
  numpy: string;
  cuda: { available: boolean; version: string | null; devices: CudaDevice[] };
  mps: boolean;
  bf16: boolean;
}

/** Where the training arrays are: a file's pair of arrays and how many samples the split has. */
export interface ArraysSplit { path: string; arrays: [string, string]; samples: number }

/** Where validation comes from: held out of the training arrays, or a file/arrays given for it. */
export type ValidationSplit =
  | (ArraysSplit & {
    source: 'held-out';
    fraction: number;
    seed: number;
    /** Whole subjects (`subjects` of `subjectArray`, out of `subjectsTotal`) or a stratified random share. */
    by: 'subject' | 'stratified';
    subjectArray?: string;
    subjects?: (number | string)[];
    subjectsTotal?: number;
    /** Why a split meant to be by subject is stratified (no subject ids in the file). */
    note?: string;
  })
  | (ArraysSplit & { source: 'file' });

export interface SplitsInfo {
  train: ArraysSplit;
  validation: ValidationSplit;
  /** `missing` says why there is no test figure (no x_test in the file; validation is the test arrays). */
  test: ArraysSplit | { missing: string };
}

/** How the run is spread (torchrun + DistributedDataParallel; 1 process without). `globalBatch`
 * (= `batchSize`) is the effective batch of a step: `perProcessBatch` on each of `worldSize`. */
export interface ProcessesInfo { worldSize: number; backend: 'gloo' | 'nccl' | null; globalBatch: number; perProcessBatch: number }

export interface StartedMessage {
  type: 'started';
  device: string;
  amp: 'bfloat16' | 'float16' | null;
  params: { total: number; trainable: number };
  trainSamples: number;
  valSamples: number;
  /** null: no test split (see splits.test.missing). */
  testSamples: number | null;
  splits: SplitsInfo;
  stepsPerEpoch: number;
  epochs: number;
  resumedFrom: { epochsDone: number; step: number } | null;
  processes: ProcessesInfo;
}

export interface ProgressMessage {
  type: 'progress';
  /** The running epoch's number, 1-based. */
  epoch: number;
  /** Steps done in this epoch (1 … stepsPerEpoch). */
  step: number;
  stepsPerEpoch: number;
  /** Steps done since the start of training (1 … epochs × stepsPerEpoch). */
  globalStep: number;
  loss: number;
  lr: number;
  /** Over all processes. */
  samplesPerSec: number;
  /** Samples per step over all processes (the effective batch). */
  globalBatch: number;
  /** Peak CUDA memory in bytes (rank 0's device); null off CUDA. */
  gpuMemory: number | null;
}

export interface EpochPoint {
  /** 1-based. */
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  lr: number;
  seconds: number;
  samplesPerSec: number;
}

export type EvalMessage =
  | { type: 'eval'; phase: 'before'; epoch: 0; valLoss: number; valAccuracy: number; best: boolean }
  | ({ type: 'eval'; phase: 'epoch'; best: boolean } & EpochPoint)
  /** Once, after training: the test split with the best weights (those of epoch `epoch`; 0 = before fine-tuning). */
  | { type: 'eval'; phase: 'test'; epoch: number; testLoss: number; testAccuracy: number; samples: number };

export interface CheckpointMessage {
  type: 'checkpoint';
  path: string;
  /** Epochs completed: a resume continues in epoch epochsDone + 1. */
  epochsDone: number;
  /** Steps done of that next epoch. */
  step: number;
  /** Epochs planned. */
  epochs: number;
  reason: 'epoch' | 'cancel';
}

export interface LogMessage { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }

/** summary.json: each figure named by its split. null = not measured (the run was cancelled first). */
export interface FinetuneSummary {
  status: 'completed' | 'cancelled';
  device: string;
  amp: string | null;
  splits: SplitsInfo;
  valAccuracyBefore: number | null;
  valLossBefore: number | null;
  /** The best validation accuracy (so far, for a cancelled run): the weights written back. */
  valAccuracyBest: number | null;
  /** Its epoch; 0 = before fine-tuning (no epoch beat the model as given). */
  bestEpoch: number | null;
  /** The test split scored once with the best weights (completed runs with a test split). */
  testAccuracy: number | null;
  testLoss: number | null;
  testSamples: number | null;
  epochs: EpochPoint[];
  epochsPlanned: number;
  wallSeconds: number;
  samplesPerSec: number | null;
  trainable: 'all' | 'lowrank';
  teacher: boolean;
  params: { total: number; trainable: number };
  torch: string;
  processes: ProcessesInfo;
}

export interface DoneMessage {
  type: 'done';
  status: 'completed' | 'cancelled';
  summary: FinetuneSummary;
  /** checkpoint.pt to resume from. */
  checkpoint: string | null;
  /** best.safetensors (completed runs): the initializer values to write back. */
  weights: string | null;
  /** probe.safetensors: `input:<name>` and `output:<name>` tensors computed by the worker. */
  probe: string | null;
  summaryPath: string;
  /** Module runs: the fine-tuned state dict the worker wrote, and its reload check (max |Δ| on the probe). */
  result?: { path: string; format: 'pt' | 'safetensors'; verification: { samples: number; maxAbsDiff: number } | null } | null;
}

/** NO_TORCH, DEVICE, BAD_CONFIG, FACTORY, FACTORS, SHAPE_MISMATCH, UNSUPPORTED (with `missing` ops), NUMERIC, OOM, INTERNAL. */
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  hint?: string | null;
  missing?: string[];
  traceback?: string;
}

export type WorkerMessage =
  | HelloMessage | StartedMessage | ProgressMessage | EvalMessage | CheckpointMessage | LogMessage | DoneMessage | ErrorMessage;

const TYPES = new Set(['hello', 'started', 'progress', 'eval', 'checkpoint', 'log', 'done', 'error']);

/** Parses one stdout line; undefined for a line that is not a protocol message. */
export function parseWorkerLine(line: string): WorkerMessage | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const msg = JSON.parse(text) as { type?: unknown };
    return typeof msg.type === 'string' && TYPES.has(msg.type) ? (msg as WorkerMessage) : undefined;
  } catch {
    return undefined;
  }
}

export function encodeClientMessage(msg: ClientMessage): string {
  return JSON.stringify(msg) + '\n';
}
