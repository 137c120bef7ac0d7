// `rankscope finetune MODEL --data D.npz …`: fine-tune a compressed model in the Python/PyTorch
// worker, stream progress, write the fine-tuned ONNX next to the input. Ctrl-C cancels cleanly
// (the worker checkpoints; --resume continues).
import { existsSync } from 'node:fs';
import { RankscopeError } from '../core/errors';
import { readTaskFile } from '../core/eval/task';
import { checkDiscoveredEnvironment, formatEnvReport } from '../worker/envCheck';
import { describeDiscovery, requirePython, type PythonCandidate } from '../worker/pythonDiscovery';
import { finetune, type FinetuneRequest } from '../worker/finetune';
import type { DataSpec, WorkerMessage } from '../worker/protocol';
import { parseOptions, type Command } from './command';

const usage = `rankscope finetune MODEL --data DATA.npz [options]

Fine-tunes a compressed ONNX model (PyTorch worker) and writes MODEL.finetuned.onnx next to it
(MODEL.finetuned-2.onnx, … when that exists; only initializer values change). Data: .npz with x_train, y_train, x_test, y_test.
  --data FILE            training data (default: "data" of ./rankscope.json)
  --val-data FILE        separate validation .npz     --train-x/--train-y/--val-x/--val-y KEY   array names
  --preset ntu           NTU RGB+D skeletons (N, 300, 150) → (N, 3, T, 25, 2)   --frames T
  --teacher ORIG.onnx    distil from the uncompressed model (--kd-temperature 4, --kd-alpha 0.5)
  --epochs N (3)   --lr X (1e-3)   --batch-size N (64)   --optimizer adamw|sgd   --momentum X (0.9)
  --weight-decay X (0.01)   --warmup EPOCHS (0)   --schedule cosine|step|constant   --step-epochs N --gamma X
  --grad-clip X (1, 0 = off)   --seed N   --trainable all|lowrank (factors + biases)
  --device auto|cpu|cuda:N|mps   --amp auto|bf16|fp16|off (CUDA)   --compile (torch.compile, torch ≥ 2)
  -o, --out FILE         output ONNX (default: the next free MODEL.finetuned.onnx)    --work-dir DIR   checkpoints
  --resume               continue from the work folder's checkpoint    --resume-from CKPT
  --python PATH          interpreter with torch (default: the first with torch of $RANKSCOPE_PYTHON,
                         the active venv/conda, python3/python on PATH, /usr/bin/python3)
  --check                check the fine-tuning environment and exit
  --json                 print every worker event and the result as JSON lines`;

const PYTHON_HOW = 'Give --python PATH (a Python 3 with torch and numpy), or set $RANKSCOPE_PYTHON.';

function num(v: string | undefined, name: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new RankscopeError('BAD_ARGUMENT', `${name} must be ${integer ? 'an integer' : 'a number'}; got '${v}'.`);
  }
  return n;
}

function oneOf<T extends string>(v: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new RankscopeError('BAD_ARGUMENT', `${name} must be one of ${allowed.join(', ')}; got '${v}'.`);
  return v as T;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'Fine-tune a compressed model (PyTorch worker) and write the weights back to ONNX.',
  usage,
  async run(argv, io) {
    const { values, positionals } = parseOptions(argv, {
      data: { type: 'string' }, 'val-data': { type: 'string' }, 'train-x': { type: 'string' }, 'train-y': { type: 'string' },
      'val-x': { type: 'string' }, 'val-y': { type: 'string' }, preset: { type: 'string' }, frames: { type: 'string' },
      teacher: { type: 'string' }, 'kd-temperature': { type: 'string' }, 'kd-alpha': { type: 'string' },
      epochs: { type: 'string' }, lr: { type: 'string' }, 'batch-size': { type: 'string' }, optimizer: { type: 'string' },
      momentum: { type: 'string' }, 'weight-decay': { type: 'string' }, warmup: { type: 'string' }, schedule: { type: 'string' },
      'step-epochs': { type: 'string' }, gamma: { type: 'string' }, 'grad-clip': { type: 'string' }, seed: { type: 'string' },
      trainable: { type: 'string' }, device: { type: 'string' }, amp: { type: 'string' }, out: { type: 'string', short: 'o' },
      'work-dir': { type: 'string' }, resume: { type: 'boolean' }, 'resume-from': { type: 'string' }, python: { type: 'string' },
      check: { type: 'boolean' }, json: { type: 'boolean' }, task: { type: 'string' }, compile: { type: 'boolean' },
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
    if (!model) throw new RankscopeError('BAD_ARGUMENT', 'which model? Give the compressed MODEL.onnx.', usage.split('\n')[0]);
    if (positionals.length > 1) throw new RankscopeError('BAD_ARGUMENT', `one model at a time (got ${positionals.join(', ')}); the original goes in --teacher.`);
    const dataPath = values.data ?? task?.data;
    if (!dataPath) throw new RankscopeError('BAD_ARGUMENT', 'no training data: give --data DATA.npz (or "data" in rankscope.json).');
    const preset = oneOf(values.preset ?? (task?.preset === 'ntu' ? 'ntu' : undefined), '--preset', ['ntu', 'none'] as const);
    const frames = num(values.frames, '--frames', true) ?? task?.ntu?.frames;
    const data: DataSpec = {
      path: dataPath, valPath: values['val-data'], trainX: values['train-x'], trainY: values['train-y'], valX: values['val-x'], valY: values['val-y'],
      preset: preset === 'ntu' ? 'ntu' : null,
      ...(preset === 'ntu' ? { ntu: { ...task?.ntu, ...(frames ? { frames } : {}) } } : {}),
    };
    const epochs = num(values.epochs, '--epochs', true) ?? 3;
    if (epochs < 1) throw new RankscopeError('BAD_ARGUMENT', `--epochs must be ≥ 1; got ${epochs}.`);
    const lr = num(values.lr, '--lr') ?? 1e-3;
    if (!(lr > 0)) throw new RankscopeError('BAD_ARGUMENT', `--lr must be > 0; got ${lr}.`);
    const batchSize = num(values['batch-size'], '--batch-size', true);
    if (batchSize !== undefined && batchSize < 1) throw new RankscopeError('BAD_ARGUMENT', `--batch-size must be ≥ 1; got ${batchSize}.`);
    const device = values.device ?? 'auto';
    if (!/^(auto|cpu|mps|cuda(:\d+)?)$/.test(device)) throw new RankscopeError('BAD_ARGUMENT', `--device must be auto, cpu, mps or cuda:N; got '${device}'.`);
    const found = await requirePython(first, PYTHON_HOW, { signal: io.signal });
    for (const line of describeDiscovery(found)) io.err(line.trim());
    const python = found.chosen.executable;
    const request: FinetuneRequest = {
      model, data, teacher: values.teacher, out: values.out, python, workDir: values['work-dir'],
      resume: values['resume-from'] ?? (values.resume ? true : undefined),
      epochs, lr, batchSize, device,
      optimizer: oneOf(values.optimizer, '--optimizer', ['adamw', 'sgd'] as const),
      momentum: num(values.momentum, '--momentum'), weightDecay: num(values['weight-decay'], '--weight-decay'),
      warmupEpochs: num(values.warmup, '--warmup'), schedule: oneOf(values.schedule, '--schedule', ['cosine', 'step', 'constant'] as const),
      stepEpochs: num(values['step-epochs'], '--step-epochs'), gamma: num(values.gamma, '--gamma'),
      gradClip: num(values['grad-clip'], '--grad-clip'), seed: num(values.seed, '--seed', true),
      trainable: oneOf(values.trainable, '--trainable', ['all', 'lowrank'] as const),
      amp: oneOf(values.amp, '--amp', ['auto', 'bf16', 'fp16', 'off'] as const), compile: values.compile,
      kd: values.teacher ? { temperature: num(values['kd-temperature'], '--kd-temperature') ?? 4, alpha: num(values['kd-alpha'], '--kd-alpha') ?? 0.5 } : null,
    };
    const onMessage = values.json ? (m: WorkerMessage) => io.out(JSON.stringify(m)) : humanProgress(io.out, io.err);
    const result = await finetune(request, { signal: io.signal, onMessage, onStderr: (l) => io.err(`[worker] ${l}`) });
    if (values.json) {
      io.out(JSON.stringify({ type: 'result', ...result }));
    } else if (result.status === 'cancelled') {
      io.err(`Cancelled. Checkpoint: ${result.checkpoint}. Continue with the same command plus --resume.`);
    } else {
      const s = result.summary;
      io.out(`accuracy ${pct(s.accuracyBefore)} → ${pct(s.accuracyAfter)} (best epoch ${s.bestEpoch}), ${s.wallSeconds.toFixed(1)} s on ${s.device}${s.amp ? ` (${s.amp} autocast)` : ''}`);
      io.out(`wrote ${result.output}`);
      if (result.verification) {
        io.out(`ONNX Runtime matches the worker on ${result.verification.samples} samples: max |Δ| = ${result.verification.maxAbsDiff.toExponential(2)}`);
      }
      io.out(`summary: ${result.summaryPath}`);
    }
    return result.status === 'cancelled' ? 130 : 0;
  },
};

function humanProgress(out: (s: string) => void, err: (s: string) => void): (m: WorkerMessage) => void {
  let lastLine = 0;
  return (m) => {
    switch (m.type) {
      case 'hello':
        err(`worker: Python ${m.python}, torch ${m.torch}${m.cuda.devices.length ? `, ${m.cuda.devices.map((d) => `cuda:${d.index} ${d.name}`).join(', ')}` : ', no CUDA'}`);
        break;
      case 'started':
        out(`fine-tuning on ${m.device}${m.amp ? ` (${m.amp})` : ''}: ${m.params.trainable}/${m.params.total} parameters train, ${m.trainSamples} training / ${m.valSamples} validation samples, ${m.epochs} epochs × ${m.stepsPerEpoch} steps${m.resumedFrom ? `, resumed at epoch ${m.resumedFrom.epoch + 1} step ${m.resumedFrom.step}` : ''}`);
        break;
      case 'progress':
        if (Date.now() - lastLine > 2000 || m.step === m.stepsPerEpoch) {
          lastLine = Date.now();
          out(`  epoch ${m.epoch} step ${m.step}/${m.stepsPerEpoch}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  ${Math.round(m.samplesPerSec)} samples/s${m.gpuMemory ? `  ${(m.gpuMemory / 2 ** 30).toFixed(2)} GiB` : ''}`);
        }
        break;
      case 'eval':
        out(m.phase === 'before'
          ? `before: val accuracy ${pct(m.valAccuracy)} (loss ${m.valLoss.toFixed(4)})`
          : `epoch ${m.epoch}: train loss ${m.trainLoss.toFixed(4)}, val accuracy ${pct(m.valAccuracy)} (loss ${m.valLoss.toFixed(4)})${m.best ? '  ★ best' : ''}`);
        break;
      case 'log':
        if (m.level !== 'debug') err(`[worker ${m.level}] ${m.message}`);
        break;
      default:
        break;
    }
  };
}
