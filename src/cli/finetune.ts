// `rankscope finetune MODEL --data D.npz …`: fine-tune a compressed model in the Python/PyTorch
// worker, stream progress, write the fine-tuned ONNX next to the input. Ctrl-C cancels cleanly
// (the worker checkpoints; --resume continues).
import { existsSync } from 'node:fs';
import { RankscopeError } from '../core/errors';
import { readTaskFile } from '../core/eval/task';
import { formatEpochProgress } from '../core/format';
import { checkDiscoveredEnvironment, formatEnvReport } from '../worker/envCheck';
import { checkProcesses, describeProcesses, parseGpus, type ProcessesOptions } from '../worker/distributed';
import { describeDiscovery, requirePython, type PythonCandidate } from '../worker/pythonDiscovery';
import { finetune, type FinetuneRequest, type FinetuneResult } from '../worker/finetune';
import { finetuneModule, isStateDictFile } from '../worker/finetuneModule';
import type { DataSpec, FinetuneSummary, TrainingOptions, WorkerMessage } from '../worker/protocol';
import { describeSplits } from '../worker/splits';
import { checkTraining, KD_DEFAULTS, resolveTraining, TRAINING_DEFAULTS as D, type TrainingRequest } from '../worker/trainingOptions';
import type { Command } from './command';
import { moduleArgs, MODULE_OPTIONS, MODULE_USAGE, refuseModuleArgs } from './finetuneModuleArgs';
import { intOption, oneOf, optionalNumber as num, parseOptions } from './options';

const usage = `rankscope finetune MODEL --data DATA.npz [options]

Fine-tunes a compressed ONNX model (PyTorch worker) and writes MODEL.finetuned.onnx next to it
(MODEL.finetuned-2.onnx, … when that exists; only initializer values change). Data: .npz with x_train, y_train, x_test, y_test.
Splits: the best epoch is picked on VALIDATION, held out of the training arrays (seeded; whole
subjects when the file has subject ids: s_train under --preset ntu, else stratified by class);
TEST (x_test, y_test) is scored once at the end with the best weights.
  --data FILE            training data (default: "data" of ./rankscope.json)
  --val-fraction X       share of the training samples held out for validation (${D.valFraction}, in (0, 0.5])
  --subjects KEY         training subject ids to hold out whole subjects (default s_train with --preset ntu)
  --val-data FILE        validate on this .npz instead (its x_test/y_test, or --val-x/--val-y KEY)
  --train-x/--train-y/--val-x/--val-y/--test-x/--test-y KEY   array names
  --preset ntu           NTU RGB+D skeletons (N, 300, 150) → (N, 3, T, 25, 2)   --frames T
  --teacher ORIG.onnx    distil from the uncompressed model (--kd-temperature ${KD_DEFAULTS.temperature}, --kd-alpha ${KD_DEFAULTS.alpha} in [0, 1])
  --epochs N (${D.epochs})   --lr X (${D.lr}, in (0, 1])   --batch-size N (${D.batchSize})   --optimizer adamw|sgd (${D.optimizer})
  --momentum X (${D.momentum}, in (0, 1))   --weight-decay X (${D.weightDecay})   --warmup EPOCHS (${D.warmupEpochs})
  --schedule cosine|step|constant (${D.schedule})   --step-epochs N (${D.stepEpochs})   --gamma X (${D.gamma}, in (0, 1])
  --grad-clip X (${D.gradClip}, 0 = off)   --seed N (${D.seed})   --trainable all|lowrank (factors + biases; ${D.trainable})
  --device auto|cpu|cuda:N|mps (${D.device})   --amp auto|bf16|fp16|off (CUDA; ${D.amp})   --compile (torch.compile, torch ≥ 2)
  --nproc N              train in N processes (torchrun + DistributedDataParallel: NCCL on CUDA, gloo on CPU);
                         --batch-size is the global batch (each process takes batch / N; a multiple of N)
  --gpus 0,1,…           one process on each of these GPUs (CUDA_VISIBLE_DEVICES; --nproc defaults to their number)
  A value out of range is refused before anything runs; a run whose loss diverges (NaN/Inf) stops
  with exit 2, naming what diverged, and writes no model.
  -o, --out FILE         output ONNX (default: the next free MODEL.finetuned.onnx)    --work-dir DIR   checkpoints
  --resume               continue from the work folder's checkpoint    --resume-from CKPT
  --python PATH          interpreter with torch (default: the first with torch of $RANKSCOPE_PYTHON,
                         the active venv/conda, python3/python on PATH, /usr/bin/python3)
  --check                check the fine-tuning environment and exit
  --json                 print every worker event and the result as JSON lines

${MODULE_USAGE}`;

/** A choice passed on as given: finetune()'s shared check refuses what is not allowed. */
const choice = <K extends keyof TrainingOptions>(v: string | undefined) => v as TrainingOptions[K] | undefined;

const PYTHON_HOW = 'Give --python PATH (a Python 3 with torch and numpy), or set $RANKSCOPE_PYTHON.';

/** A loss with 4 decimals, '—' when the worker sent none (it sends a non-finite value as null). */
const fixed = (x: number | null | undefined) => (typeof x === 'number' ? x.toFixed(4) : '—');

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'Fine-tune a compressed model (PyTorch worker) and write the weights back to ONNX.',
  usage,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, {
      data: { type: 'string' }, 'val-data': { type: 'string' }, 'train-x': { type: 'string' }, 'train-y': { type: 'string' },
      'val-x': { type: 'string' }, 'val-y': { type: 'string' }, 'test-x': { type: 'string' }, 'test-y': { type: 'string' },
      subjects: { type: 'string' }, 'val-fraction': { type: 'string' }, preset: { type: 'string' }, frames: { type: 'string' },
      teacher: { type: 'string' }, 'kd-temperature': { type: 'string' }, 'kd-alpha': { type: 'string' },
      epochs: { type: 'string' }, lr: { type: 'string' }, 'batch-size': { type: 'string' }, optimizer: { type: 'string' },
      momentum: { type: 'string' }, 'weight-decay': { type: 'string' }, warmup: { type: 'string' }, schedule: { type: 'string' },
      'step-epochs': { type: 'string' }, gamma: { type: 'string' }, 'grad-clip': { type: 'string' }, seed: { type: 'string' },
      trainable: { type: 'string' }, device: { type: 'string' }, amp: { type: 'string' }, out: { type: 'string', short: 'o' },
      'work-dir': { type: 'string' }, resume: { type: 'boolean' }, 'resume-from': { type: 'string' }, python: { type: 'string' },
      check: { type: 'boolean' }, json: { type: 'boolean' }, task: { type: 'string' }, compile: { type: 'boolean' },
      nproc: { type: 'string' }, gpus: { type: 'string' },
      ...MODULE_OPTIONS,
    });
    const first: PythonCandidate[] = values.python ? [{ path: values.python, source: '--python' }] : [];
    if (values.check) {
      const report = await checkDiscoveredEnvironment(first, PYTHON_HOW, { signal: io.signal });
      if (values.json) io.out(JSON.stringify(report, null, 2));
      else for (const line of formatEnvReport(report)) io.out(line);
      return report.ok ? 0 : 2;
    }
    const taskPath = values.task ?? (existsSync('rankscope.json') ? 'rankscope.json' : undefined);
    const task = taskPath ? await readTaskFile(taskPath) : undefined;
    const model = positionals[0];
    if (!model) throw new RankscopeError('BAD_ARGUMENT', 'which model? Give the compressed MODEL.onnx, or a PyTorch checkpoint with --factors and --factory.', usage.split('\n')[0]);
    if (positionals.length > 1) throw new RankscopeError('BAD_ARGUMENT', `one model at a time (got ${positionals.join(', ')}); the original goes in --teacher.`);
    // A PyTorch checkpoint trains as the user's own nn.Module (finetuneModuleArgs.ts); ONNX as its graph.
    // A missing file is said after the option checks (as for ONNX); its name tells the path meanwhile.
    const isCheckpoint = existsSync(model) ? await isStateDictFile(model) : /\.(pt|pth|bin|safetensors)$/i.test(model);
    if (!isCheckpoint) refuseModuleArgs(values);
    const moduleRun = isCheckpoint ? moduleArgs(values, model) : undefined;
    const distilling = moduleRun ? values.distill === true : values.teacher !== undefined;
    const dataPath = values.data ?? task?.data;
    if (!dataPath) throw new RankscopeError('BAD_ARGUMENT', 'no training data: give --data DATA.npz (or "data" in rankscope.json).');
    const preset = oneOf(values.preset ?? (task?.preset === 'ntu' ? 'ntu' : undefined), '--preset', ['ntu', 'none'] as const);
    if (values.frames !== undefined && preset !== 'ntu') throw new RankscopeError('BAD_ARGUMENT', '--frames sets the NTU preset\'s clip length; it needs --preset ntu.');
    const frames = values.frames === undefined ? task?.ntu?.frames : intOption(values.frames, '--frames', 1);
    const data: DataSpec = {
      path: dataPath, valPath: values['val-data'], trainX: values['train-x'], trainY: values['train-y'], valX: values['val-x'], valY: values['val-y'],
      testX: values['test-x'], testY: values['test-y'], subjects: values.subjects,
      preset: preset === 'ntu' ? 'ntu' : null,
      ...(preset === 'ntu' ? { ntu: { ...task?.ntu, ...(frames !== undefined ? { frames } : {}) } } : {}),
    };
    if (!distilling && (values['kd-temperature'] !== undefined || values['kd-alpha'] !== undefined)) {
      throw new RankscopeError('BAD_ARGUMENT', `--kd-temperature and --kd-alpha set up distillation, which needs ${moduleRun ? '--distill' : '--teacher ORIGINAL.onnx'}.`);
    }
    // Parsed here, checked (ranges, choices) and defaulted in finetune(): the extension shares that.
    const training: TrainingRequest = {
      epochs: num(values.epochs, '--epochs', true), lr: num(values.lr, '--lr'), batchSize: num(values['batch-size'], '--batch-size', true),
      device: values.device, optimizer: choice<'optimizer'>(values.optimizer),
      momentum: num(values.momentum, '--momentum'), weightDecay: num(values['weight-decay'], '--weight-decay'),
      warmupEpochs: num(values.warmup, '--warmup'), schedule: choice<'schedule'>(values.schedule),
      stepEpochs: num(values['step-epochs'], '--step-epochs'), gamma: num(values.gamma, '--gamma'),
      gradClip: num(values['grad-clip'], '--grad-clip'), seed: num(values.seed, '--seed', true),
      trainable: choice<'trainable'>(values.trainable), amp: choice<'amp'>(values.amp), compile: values.compile,
      valFraction: num(values['val-fraction'], '--val-fraction'),
      kd: distilling ? { temperature: num(values['kd-temperature'], '--kd-temperature'), alpha: num(values['kd-alpha'], '--kd-alpha') } : null,
    };
    const processes: ProcessesOptions = {
      nproc: values.nproc === undefined ? undefined : intOption(values.nproc, '--nproc', 1),
      gpus: values.gpus === undefined ? undefined : parseGpus(values.gpus),
    };
    // Bad options are refused before the interpreter search, which starts Python processes.
    const resolved = resolveTraining(training, distilling);
    checkTraining(resolved, data);
    checkProcesses(processes, resolved);
    const found = await requirePython(first, PYTHON_HOW, { signal: io.signal });
    for (const line of describeDiscovery(found)) io.err(line.trim());
    const python = found.chosen.executable;
    const request: FinetuneRequest = {
      model, data, teacher: values.teacher, out: values.out, worker: { python, ...processes }, workDir: values['work-dir'],
      resume: values['resume-from'] ?? (values.resume ? true : undefined),
      training,
    };
    const onMessage = values.json ? (m: WorkerMessage) => io.out(JSON.stringify(m)) : humanProgress(io.out, io.err);
    const handlers = { signal: io.signal, onMessage, onStderr: (l: string) => io.err(`[worker] ${l}`) };
    const result: FinetuneResult = moduleRun
      ? await finetuneModule({ ...moduleRun, checkpoint: model, data, distill: distilling, out: values.out, worker: { python, ...processes }, workDir: request.workDir, resume: request.resume, training }, handlers)
      : await finetune(request, handlers);
    if (values.json) {
      io.out(JSON.stringify({ type: 'result', ...result }));
    } else if (result.status === 'cancelled') {
      io.err(`Cancelled with ${result.summary.epochs.length} of ${result.summary.epochsPlanned} epochs done; best validation accuracy so far ${bestText(result.summary)}. Checkpoint: ${result.checkpoint}. Continue with the same command plus --resume.`);
    } else {
      const s = result.summary;
      io.out(`validation accuracy ${pct(s.valAccuracyBefore)} → ${bestText(s)}; test accuracy ${testText(s)}; ${s.wallSeconds.toFixed(1)} s on ${s.device}${s.amp ? ` (${s.amp} autocast)` : ''}${describeProcesses(s.processes)}`);
      io.out(`wrote ${result.output}`);
      if (result.verification) {
        const checker = moduleRun ? 'Reloaded into a new module, it matches' : 'ONNX Runtime matches';
        io.out(`${checker} the worker on ${result.verification.samples} samples: max |Δ| = ${result.verification.maxAbsDiff.toExponential(2)}`);
      }
      io.out(`summary: ${result.summaryPath}`);
    }
    return result.status === 'cancelled' ? 130 : 0;
  },
};

/** "88.0% (epoch 2)", "35.0% (before fine-tuning: no epoch beat it)", or "—" when nothing was validated. */
function bestText(s: FinetuneSummary): string {
  if (s.valAccuracyBest === null || s.bestEpoch === null) return '— (nothing validated yet)';
  return `${pct(s.valAccuracyBest)} (${s.bestEpoch === 0 ? 'before fine-tuning: no epoch beat it' : `best: epoch ${s.bestEpoch}`})`;
}

function testText(s: FinetuneSummary): string {
  if (s.testAccuracy === null) return `— (${'missing' in s.splits.test ? s.splits.test.missing : 'not measured'})`;
  return `${pct(s.testAccuracy)} (${s.testSamples} samples, the best weights, scored once)`;
}

function humanProgress(out: (s: string) => void, err: (s: string) => void): (m: WorkerMessage) => void {
  let lastLine = 0;
  let epochs = 0;
  return (m) => {
    switch (m.type) {
      case 'hello':
        err(`worker: Python ${m.python}, torch ${m.torch}${m.cuda.devices.length ? `, ${m.cuda.devices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')}` : ', no CUDA'}`);
        break;
      case 'started':
        epochs = m.epochs;
        out(`fine-tuning on ${m.device}${m.amp ? ` (${m.amp})` : ''}${describeProcesses(m.processes)}: ${m.params.trainable}/${m.params.total} parameters train, ${m.trainSamples} training / ${m.valSamples} validation${m.testSamples !== null ? ` / ${m.testSamples} test` : ''} samples, ${m.epochs} epoch${m.epochs === 1 ? '' : 's'} × ${m.stepsPerEpoch} steps${m.resumedFrom ? `, resumed with ${m.resumedFrom.epochsDone} epochs and ${m.resumedFrom.step} steps done` : ''}`);
        for (const line of describeSplits(m.splits)) out(`  ${line}`);
        break;
      case 'progress':
        if (Date.now() - lastLine > 2000 || m.step === m.stepsPerEpoch) {
          lastLine = Date.now();
          out(`  ${formatEpochProgress(m.epoch, epochs, m.globalStep, epochs * m.stepsPerEpoch)}  loss ${fixed(m.loss)}  lr ${m.lr.toExponential(2)}  ${Math.round(m.samplesPerSec)} samples/s${m.gpuMemory ? `  ${(m.gpuMemory / 2 ** 30).toFixed(2)} GiB` : ''}`);
        }
        break;
      case 'eval':
        if (m.phase === 'before') out(`before fine-tuning: validation accuracy ${pct(m.valAccuracy)} (loss ${fixed(m.valLoss)})`);
        else if (m.phase === 'epoch') out(`epoch ${m.epoch} / ${epochs}: train loss ${fixed(m.trainLoss)}, validation accuracy ${pct(m.valAccuracy)} (loss ${fixed(m.valLoss)})${m.best ? '  ★ best' : ''}`);
        else out(`test, with the best weights (${m.epoch === 0 ? 'before fine-tuning' : `epoch ${m.epoch}`}): accuracy ${pct(m.testAccuracy)} (loss ${fixed(m.testLoss)}, ${m.samples} samples)`);
        break;
      case 'log':
        if (m.level !== 'debug') err(`[worker ${m.level}] ${m.message}`);
        break;
      default:
        break;
    }
  };
}
