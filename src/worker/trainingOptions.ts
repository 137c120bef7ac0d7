// Fine-tuning options: the ONE set of defaults and the ONE range check. The CLI's usage text and
// the extension's prompts show these defaults, `finetune()` fills them in and checks every option
// before anything starts, and the worker receives a complete config. The Python worker keeps a
// copy for headless `--config` runs (rankscope_worker/config.py); a unit test holds them equal.
import { RankscopeError } from '../core/errors';
import type { DataSpec, KdOptions, TrainingOptions } from './protocol';

export const TRAINING_DEFAULTS: Readonly<TrainingOptions> = Object.freeze({
  epochs: 3, batchSize: 64, lr: 1e-3, optimizer: 'adamw', momentum: 0.9, weightDecay: 0.01,
  warmupEpochs: 0, schedule: 'cosine', stepEpochs: 1, gamma: 0.1, gradClip: 1, seed: 0,
  trainable: 'all', device: 'auto', amp: 'auto', kd: null, probeSamples: 16,
  evalBatchSize: 256, progressEvery: 0.5, compile: false, valFraction: 0.1,
});

/** Distillation settings when a teacher is given and `kd` leaves them unset. */
export const KD_DEFAULTS: Readonly<KdOptions> = Object.freeze({ temperature: 4, alpha: 0.5 });

/** What a caller may set: any option, and kd's fields one by one. */
export type TrainingRequest = Partial<Omit<TrainingOptions, 'kd'>> & { kd?: Partial<KdOptions> | null };

/**
 * Every option filled in from the defaults (undefined = default). With a teacher and no `kd`,
 * distillation takes KD_DEFAULTS; `kd: null` trains on labels only.
 */
export function resolveTraining(request: TrainingRequest = {}, hasTeacher = false): TrainingOptions {
  const set = Object.fromEntries(Object.entries(request).filter(([, v]) => v !== undefined)) as TrainingRequest;
  const kd = set.kd === null ? null : set.kd || hasTeacher ? { ...KD_DEFAULTS, ...definedOnly(set.kd ?? {}) } : null;
  return { ...TRAINING_DEFAULTS, ...set, kd } as TrainingOptions;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A numeric option's allowed range, and its CLI flag (messages name both). */
interface NumberRule {
  flag: string;
  min: number;
  max?: number;
  /** Bounds excluded: (min, …) or (…, max). */
  minOpen?: boolean;
  maxOpen?: boolean;
  integer?: boolean;
  /** What the option is, for the message. */
  what: string;
}

type NumericOption = 'epochs' | 'batchSize' | 'lr' | 'momentum' | 'weightDecay' | 'warmupEpochs' | 'stepEpochs' | 'gamma'
  | 'gradClip' | 'seed' | 'probeSamples' | 'evalBatchSize' | 'progressEvery' | 'valFraction' | 'kd.temperature' | 'kd.alpha' | 'ntu.frames' | 'ntu.crop';

export const NUMBER_RULES: Readonly<Record<NumericOption, NumberRule>> = {
  epochs: { flag: '--epochs', min: 1, integer: true, what: 'the number of training epochs' },
  batchSize: { flag: '--batch-size', min: 1, integer: true, what: 'samples per training step' },
  lr: { flag: '--lr', min: 0, minOpen: true, max: 1, what: 'the peak learning rate (fine-tuning uses 1e-5 … 1e-2)' },
  momentum: { flag: '--momentum', min: 0, minOpen: true, max: 1, maxOpen: true, what: 'the SGD momentum (Nesterov, which needs one > 0)' },
  weightDecay: { flag: '--weight-decay', min: 0, max: 1, what: 'the weight decay' },
  warmupEpochs: { flag: '--warmup', min: 0, what: 'warm-up epochs' },
  stepEpochs: { flag: '--step-epochs', min: 0, minOpen: true, what: 'epochs between step decays' },
  gamma: { flag: '--gamma', min: 0, minOpen: true, max: 1, what: 'the step decay factor' },
  gradClip: { flag: '--grad-clip', min: 0, what: 'the gradient-norm clip (0 = off)' },
  seed: { flag: '--seed', min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, what: 'the random seed' },
  probeSamples: { flag: 'probeSamples', min: 0, integer: true, what: 'validation samples kept for the write-back check' },
  evalBatchSize: { flag: 'evalBatchSize', min: 1, integer: true, what: 'samples per validation batch' },
  progressEvery: { flag: 'progressEvery', min: 0, what: 'seconds between progress messages' },
  valFraction: { flag: '--val-fraction', min: 0, minOpen: true, max: 0.5, what: 'the share of the training samples held out for validation' },
  'kd.temperature': { flag: '--kd-temperature', min: 0, minOpen: true, what: 'the distillation temperature' },
  'kd.alpha': { flag: '--kd-alpha', min: 0, max: 1, what: 'the share of the distillation loss (0 = labels only, 1 = teacher only)' },
  'ntu.frames': { flag: '--frames', min: 1, integer: true, what: 'frames per clip after resampling' },
  'ntu.crop': { flag: 'ntu.crop', min: 0, minOpen: true, max: 1, what: 'the share of valid frames kept by the centre crop' },
};

const CHOICES = {
  optimizer: { flag: '--optimizer', values: ['adamw', 'sgd'] },
  schedule: { flag: '--schedule', values: ['cosine', 'step', 'constant'] },
  trainable: { flag: '--trainable', values: ['all', 'lowrank'] },
  amp: { flag: '--amp', values: ['auto', 'bf16', 'fp16', 'off'] },
} as const;

function rangeText(r: NumberRule): string {
  const kind = r.integer ? 'an integer' : 'a number';
  if (r.max === undefined) return `${kind} ${r.minOpen ? '>' : '≥'} ${r.min}`;
  return `${kind} in ${r.minOpen ? '(' : '['}${r.min}, ${r.max === Number.MAX_SAFE_INTEGER ? '2^53' : r.max}${r.maxOpen ? ')' : ']'}`;
}

/** Why `value` is not allowed for `option`, or undefined when it is (the extension's input boxes use it). */
export function numberProblem(option: NumericOption, value: number): string | undefined {
  const r = NUMBER_RULES[option];
  const ok = Number.isFinite(value) && (r.integer ? Number.isInteger(value) : true)
    && (r.minOpen ? value > r.min : value >= r.min)
    && (r.max === undefined || (r.maxOpen ? value < r.max : value <= r.max));
  return ok ? undefined : `${r.flag === option ? option : `${r.flag} (${option})`} must be ${rangeText(r)}, ${r.what}; got ${value}.`;
}

/** Checks every option (and the data's numeric settings); throws BAD_ARGUMENT naming the first bad one. */
export function checkTraining(options: TrainingOptions, data?: DataSpec): void {
  const problems: (string | undefined)[] = [];
  const number = (option: NumericOption, value: number | undefined) => {
    if (value !== undefined) problems.push(numberProblem(option, value));
  };
  for (const key of ['epochs', 'batchSize', 'lr', 'momentum', 'weightDecay', 'warmupEpochs', 'stepEpochs', 'gamma', 'gradClip', 'seed', 'probeSamples', 'evalBatchSize', 'progressEvery', 'valFraction'] as const) {
    number(key, options[key]);
  }
  if (options.kd) {
    number('kd.temperature', options.kd.temperature);
    number('kd.alpha', options.kd.alpha);
  }
  number('ntu.frames', data?.ntu?.frames);
  number('ntu.crop', data?.ntu?.crop);
  for (const [key, c] of Object.entries(CHOICES) as [keyof typeof CHOICES, (typeof CHOICES)[keyof typeof CHOICES]][]) {
    if (!(c.values as readonly string[]).includes(options[key])) problems.push(`${c.flag} must be one of ${c.values.join(', ')}; got '${options[key]}'.`);
  }
  if (data?.ntu?.resample !== undefined && !['linear', 'uniform'].includes(data.ntu.resample)) problems.push(`ntu.resample must be linear or uniform; got '${data.ntu.resample}'.`);
  if (!/^(auto|cpu|mps|cuda(:\d+)?)$/.test(options.device)) problems.push(`--device must be auto, cpu, mps or cuda:N; got '${options.device}'.`);
  if (typeof options.compile !== 'boolean') problems.push(`compile must be true or false; got ${JSON.stringify(options.compile)}.`);
  const problem = problems.find((p) => p !== undefined);
  if (problem) throw new RankscopeError('BAD_ARGUMENT', problem);
  if (options.warmupEpochs > options.epochs) {
    throw new RankscopeError('BAD_ARGUMENT', `--warmup (${options.warmupEpochs} epochs) is longer than the training (--epochs ${options.epochs}).`, 'Warm up for part of the run, e.g. --warmup 1.');
  }
}
