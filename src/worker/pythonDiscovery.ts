// Which Python runs the fine-tuning worker: the first candidate that imports torch and numpy.
// Candidates, in order: what the caller was told (the extension's setting, the CLI's --python),
// the Python extension's interpreter (the extension adds it), $RANKSCOPE_PYTHON, the active
// virtual environment and conda environment, `python3` and `python` on PATH, then the system
// Python. Each is probed by running it (a few seconds: importing torch); the first that has
// torch wins and every rejection keeps its reason, so the log can say why a Python was skipped.
// Used by the extension (src/extension/python.ts), `rankscope finetune` and `rankscope demo`.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { RankscopeError } from '../core/errors';

export interface PythonCandidate {
  /** Interpreter command or path, as given. */
  path: string;
  /** Where it came from, for the log: `setting`, `--python`, `PATH python3`, … */
  source: string;
}

export interface PythonProbe extends PythonCandidate {
  /** Absolute path of the executable (PATH looked up); undefined when none was found. */
  executable?: string;
  /** torch version, when it imports. */
  torch?: string;
  /** Why it was not chosen. */
  rejected?: string;
}

export interface PythonDiscovery {
  /** The first candidate with torch and numpy; undefined when none has them. */
  chosen?: PythonProbe & { executable: string; torch: string };
  /** Every candidate probed, in order (the chosen one last); duplicates of earlier ones dropped. */
  probes: PythonProbe[];
}

export interface DiscoveryOptions {
  /** Environment to read PATH, VIRTUAL_ENV, CONDA_PREFIX and RANKSCOPE_PYTHON from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Interpreters tried after PATH (default: /usr/bin/python3, where Debian's python3-torch lives). */
  systemPythons?: string[];
  /** Per-candidate time limit for `import torch` (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const WINDOWS = process.platform === 'win32';
const SYSTEM_PYTHONS = WINDOWS ? [] : ['/usr/bin/python3'];

/** The candidates after the caller's own: $RANKSCOPE_PYTHON, active venv/conda, PATH, system. */
export function environmentCandidates(options: Pick<DiscoveryOptions, 'env' | 'systemPythons'> = {}): PythonCandidate[] {
  const env = options.env ?? process.env;
  const inEnv = (prefix: string) => (WINDOWS ? [join(prefix, 'python.exe'), join(prefix, 'Scripts', 'python.exe')] : [join(prefix, 'bin', 'python3'), join(prefix, 'bin', 'python')]);
  const out: PythonCandidate[] = [];
  if (env.RANKSCOPE_PYTHON) out.push({ path: env.RANKSCOPE_PYTHON, source: '$RANKSCOPE_PYTHON' });
  if (env.VIRTUAL_ENV) out.push(...inEnv(env.VIRTUAL_ENV).filter(existsSync).slice(0, 1).map((path) => ({ path, source: 'active virtual environment ($VIRTUAL_ENV)' })));
  if (env.CONDA_PREFIX) out.push(...inEnv(env.CONDA_PREFIX).filter(existsSync).slice(0, 1).map((path) => ({ path, source: 'active conda environment ($CONDA_PREFIX)' })));
  for (const name of WINDOWS ? ['python', 'python3'] : ['python3', 'python']) out.push({ path: name, source: `${name} on PATH` });
  for (const path of options.systemPythons ?? SYSTEM_PYTHONS) out.push({ path, source: 'system Python' });
  return out;
}

/** `name` looked up on PATH (or checked, when it is a path); undefined when not an executable file. */
export function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const runnable = (p: string) => {
    try {
      if (!statSync(p).isFile()) return false;
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (isAbsolute(name) || name.includes('/') || name.includes('\\')) return runnable(name) ? name : undefined;
  const exts = WINDOWS ? (env.PATHEXT ?? '.EXE').split(';').filter(Boolean) : [''];
  for (const dir of (env.PATH ?? env.Path ?? '').split(delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const p = join(dir, name + ext);
      if (runnable(p)) return p;
    }
  }
  return undefined;
}

// Prints the torch version; fails with the ImportError's message when torch or numpy is missing.
const PROBE = 'import sys\ntry:\n    import torch, numpy\nexcept Exception as e:\n    print("%s: %s" % (type(e).__name__, e), file=sys.stderr); sys.exit(3)\nprint(torch.__version__)';

function probe(executable: string, env: NodeJS.ProcessEnv, timeoutMs: number, signal?: AbortSignal): Promise<{ torch?: string; rejected?: string }> {
  return new Promise((resolve) => {
    const child = spawn(executable, ['-c', PROBE], { env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ rejected: (e as Error).name === 'AbortError' ? 'cancelled' : `cannot run it (${(e as NodeJS.ErrnoException).code ?? e.message})` });
    });
    child.once('close', (code, sig) => {
      clearTimeout(timer);
      const version = stdout.trim().split('\n').pop();
      if (code === 0 && version) resolve({ torch: version });
      else if (sig) resolve({ rejected: `no answer within ${Math.round(timeoutMs / 1000)} s` });
      else if (code === 3) resolve({ rejected: `no PyTorch/numpy (${stderr.trim().split('\n').pop()})` });
      else resolve({ rejected: `exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`.trim() });
    });
  });
}

/**
 * Probes `first` (the caller's candidates), then environmentCandidates(), in order, and stops at
 * the first interpreter with torch and numpy. A path reached twice (the setting naming the PATH's
 * python3) is probed once.
 */
export async function discoverPython(first: PythonCandidate[], options: DiscoveryOptions = {}): Promise<PythonDiscovery> {
  const env = options.env ?? process.env;
  const probes: PythonProbe[] = [];
  const seen = new Set<string>();
  for (const candidate of [...first, ...environmentCandidates(options)]) {
    if (options.signal?.aborted) throw new RankscopeError('CANCELLED', 'Cancelled.');
    const executable = findExecutable(candidate.path, env);
    if (!executable) {
      probes.push({ ...candidate, rejected: isAbsolute(candidate.path) ? 'no such file' : 'not on PATH' });
      continue;
    }
    if (seen.has(executable)) continue;
    seen.add(executable);
    const result = await probe(executable, env, options.timeoutMs ?? 60_000, options.signal);
    if (options.signal?.aborted) throw new RankscopeError('CANCELLED', 'Cancelled.');
    const p: PythonProbe = { ...candidate, executable, ...result };
    probes.push(p);
    if (p.torch) return { chosen: p as PythonDiscovery['chosen'], probes };
  }
  return { probes };
}

/** Log lines: what was chosen and why each earlier candidate was not. */
export function describeDiscovery(d: PythonDiscovery): string[] {
  const lines = d.chosen
    ? [`Python for fine-tuning: ${d.chosen.executable} (${d.chosen.source}), torch ${d.chosen.torch}`]
    : ['No Python with PyTorch found.'];
  for (const p of d.probes) if (p.rejected) lines.push(`  skipped ${p.executable ?? p.path} (${p.source}): ${p.rejected}`);
  return lines;
}

/** The error when no candidate has torch; `how` says how to name an interpreter in this front end. */
export function noPythonError(d: PythonDiscovery, how: string): RankscopeError {
  const tried = d.probes.map((p) => `${p.executable ?? p.path} (${p.source}: ${p.rejected})`).join('; ');
  return new RankscopeError('WORKER', `No Python with PyTorch and numpy was found. Tried: ${tried || 'nothing'}.`,
    `${how} Or install them into one of these: python3 -m pip install torch numpy.`);
}

/** discoverPython, throwing noPythonError when none has torch. */
export async function requirePython(first: PythonCandidate[], how: string, options: DiscoveryOptions = {}): Promise<PythonDiscovery & { chosen: NonNullable<PythonDiscovery['chosen']> }> {
  const d = await discoverPython(first, options);
  if (!d.chosen) throw noPythonError(d, how);
  return d as PythonDiscovery & { chosen: NonNullable<PythonDiscovery['chosen']> };
}
