// "Rankscope: Check Fine-tuning Environment": finds the interpreter the fine-tuning would use
// (pythonDiscovery.ts), starts the worker in `--hello` mode with it, and says exactly what is
// missing and how to fix it. The extension shows the lines; the CLI prints them (`rankscope finetune --check`).
import { isRankscopeError } from '../core/errors';
import { defaultPython, FinetuneWorker } from './client';
import type { HelloMessage } from './protocol';
import { describeDiscovery, discoverPython, noPythonError, type DiscoveryOptions, type PythonCandidate, type PythonDiscovery } from './pythonDiscovery';

export interface EnvProblem {
  what: string;
  fix: string;
}

export interface EnvReport {
  /** True when fine-tuning can run (possibly only on the CPU). */
  ok: boolean;
  python: string;
  hello?: HelloMessage;
  /** Best device the worker would pick with --device auto. */
  device?: string;
  problems: EnvProblem[];
  notes: string[];
  /** How the interpreter was found (checkDiscoveredEnvironment). */
  discovery?: PythonDiscovery;
}

/**
 * Discovers the interpreter (the caller's candidates first, then the environment's) and checks
 * it. `how` tells the user how to name an interpreter in this front end (setting or --python).
 */
export async function checkDiscoveredEnvironment(first: PythonCandidate[], how: string, options: DiscoveryOptions & { timeoutMs?: number } = {}): Promise<EnvReport> {
  const discovery = await discoverPython(first, { env: options.env, systemPythons: options.systemPythons, signal: options.signal });
  if (!discovery.chosen) {
    const e = noPythonError(discovery, how);
    return { ok: false, python: first[0]?.path ?? defaultPython(), problems: [{ what: e.message, fix: e.hint! }], notes: describeDiscovery(discovery).slice(1), discovery };
  }
  const report = await checkFinetuneEnvironment(discovery.chosen.executable, { signal: options.signal, timeoutMs: options.timeoutMs, env: options.env });
  report.discovery = discovery;
  report.notes.push(...describeDiscovery(discovery));
  return report;
}

const MIN_TORCH: [number, number] = [1, 13];

export async function checkFinetuneEnvironment(python = defaultPython(), options: { signal?: AbortSignal; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<EnvReport> {
  const report: EnvReport = { ok: false, python, problems: [], notes: [] };
  let worker: FinetuneWorker;
  try {
    worker = await FinetuneWorker.launch({ python, args: ['--hello'], helloTimeoutMs: options.timeoutMs ?? 120_000, env: options.env }, options.signal);
  } catch (e) {
    if (!isRankscopeError(e) || e.code === 'CANCELLED') throw e;
    const noTorch = /cannot import/.test(e.message);
    report.problems.push({
      what: noTorch ? `${python} has no PyTorch (or numpy).` : e.message.split('\n')[0],
      fix: e.hint ?? 'Choose a Python 3 with torch and numpy: the rankscope.python.interpreter setting in VS Code, --python on the command line.',
    });
    return report;
  }
  await worker.dispose();
  const h = worker.hello;
  report.hello = h;
  const [major, minor] = h.torch.split('.').map((p) => parseInt(p, 10));
  if (major < MIN_TORCH[0] || (major === MIN_TORCH[0] && minor < MIN_TORCH[1])) {
    report.problems.push({ what: `torch ${h.torch} is older than ${MIN_TORCH.join('.')}.`, fix: `${h.executable} -m pip install -U torch` });
  }
  report.notes.push(`Python ${h.python} (${h.executable}), torch ${h.torch}, numpy ${h.numpy}.`);
  if (h.cuda.available && h.cuda.devices.length) {
    for (const d of h.cuda.devices) {
      report.notes.push(`cuda:${d.index}: ${d.name}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, compute ${d.capability}${h.bf16 ? ', bf16' : ''} (CUDA ${h.cuda.version}).`);
    }
    report.device = 'cuda:0';
  } else if (h.mps) {
    report.notes.push('Apple GPU (mps) available.');
    report.device = 'mps';
  } else {
    report.device = 'cpu';
    report.notes.push(h.cuda.version
      ? `This torch is built with CUDA ${h.cuda.version} but sees no GPU: check the NVIDIA driver and CUDA_VISIBLE_DEVICES. Fine-tuning will run on the CPU (slow).`
      : 'This torch has no CUDA support: fine-tuning will run on the CPU (slow). For a GPU, install a CUDA build of torch (see pytorch.org).');
  }
  report.ok = report.problems.length === 0;
  return report;
}

export function formatEnvReport(r: EnvReport): string[] {
  const lines = [`Fine-tuning environment (${r.python}): ${r.ok ? `ready, device ${r.device}` : 'NOT ready'}`];
  for (const p of r.problems) lines.push(`  ✗ ${p.what}\n    fix: ${p.fix}`);
  for (const n of r.notes) lines.push(`  • ${n}`);
  return lines;
}
