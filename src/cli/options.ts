// Option parsing every command shares: node:util parseArgs with our error type, the number/list/
// choice readers (exit 2 naming the option), and the task options eval and sweep both take.
import { existsSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { RankscopeError } from '../core/errors';
import { readTaskFile, type TaskFile } from '../core/eval/task';

/** node:util parseArgs with our error type, so unknown options are a clean exit 2 on one line. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: withNegativeValues(argv, options), options, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs explains over several lines; the CLI's rule is one line on stderr.
    throw new RankscopeError('BAD_ARGUMENT', (e as Error).message.split('\n')[0]!, 'Run `rankscope help` for usage.');
  }
}

/**
 * `--lr -1` as `--lr=-1`: parseArgs takes a value starting with '-' for an option and refuses it,
 * so a negative number would be "ambiguous" instead of reaching the range check that says why.
 */
function withNegativeValues(argv: string[], options: NonNullable<ParseArgsConfig['options']>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.startsWith('--') ? argv[i]!.slice(2) : undefined;
    const next = argv[i + 1];
    if (name && options[name]?.type === 'string' && next !== undefined && /^-(\d|\.\d)/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

export function intOption(text: string, flag: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new RankscopeError('BAD_ARGUMENT', `${flag} must be an integer ≥ ${min}; got '${text}'.`);
  return n;
}

/** An optional number (an integer when asked); range checks are the caller's. */
export function optionalNumber(text: string | undefined, flag: string, integer = false): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new RankscopeError('BAD_ARGUMENT', `${flag} must be ${integer ? 'an integer' : 'a number'}; got '${text}'.`);
  }
  return n;
}

/** A number, or a percentage (`50%`). Range checks are the policies'. */
export function fractionOption(text: string, flag: string): number {
  const pct = text.endsWith('%');
  const n = Number(pct ? text.slice(0, -1) : text);
  if (!Number.isFinite(n)) throw new RankscopeError('BAD_ARGUMENT', `${flag} must be a number (or a percentage); got '${text}'.`);
  return pct ? n / 100 : n;
}

/** Numbers separated by commas, each a number or a percentage (`0.3,50%`). */
export function numberList(text: string | undefined, flag: string): number[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => (s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s)));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v))) throw new RankscopeError('BAD_ARGUMENT', `${flag} takes numbers separated by commas (0.3 or 30%); got '${text}'.`);
  return values;
}

/** Names separated by commas (`--layers a,b.*`); undefined when not given. */
export function nameList(text: string | undefined): string[] | undefined {
  return text?.split(',').map((s) => s.trim()).filter(Boolean);
}

export function oneOf<T extends string>(text: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (text === undefined) return undefined;
  if (!allowed.includes(text as T)) throw new RankscopeError('BAD_ARGUMENT', `${flag} must be one of ${allowed.join(', ')}; got '${text}'.`);
  return text as T;
}

/** The task options eval and sweep share (rankscope.json fields; docs/task-file.md). */
export const TASK_OPTIONS = {
  task: { type: 'string' }, data: { type: 'string' }, input: { type: 'string', multiple: true },
  labels: { type: 'string' }, preset: { type: 'string' }, output: { type: 'string' }, 'class-axis': { type: 'string' },
  'batch-size': { type: 'string' }, limit: { type: 'string' }, ep: { type: 'string' }, threads: { type: 'string' },
} as const;

/** --class-axis K: an axis of the output (negative counts from the end). */
function axisOption(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || text.trim() === '') throw new RankscopeError('BAD_ARGUMENT', `--class-axis must be an integer (an axis of the output; negative counts from the end); got '${text}'.`);
  return n;
}

/** --task FILE, else ./rankscope.json when it exists. */
export async function taskFileFor(path: string | undefined): Promise<TaskFile> {
  if (path) return readTaskFile(path);
  return existsSync('rankscope.json') ? readTaskFile('rankscope.json') : {};
}

/** The TASK_OPTIONS given on the command line, as task-file fields (they override the file's). */
export function cliOverrides(values: Record<string, string | string[] | boolean | undefined>): Partial<TaskFile> {
  const str = (k: string) => values[k] as string | undefined;
  let inputs: Record<string, string> | undefined;
  for (const pair of (values.input as string[] | undefined) ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(pair);
    if (!m) throw new RankscopeError('BAD_ARGUMENT', `--input takes NAME=ARRAY; got '${pair}'.`);
    (inputs ??= {})[m[1]] = m[2];
  }
  const labels = str('labels');
  const optionalInt = (k: string) => (str(k) === undefined ? undefined : intOption(str(k)!, `--${k}`));
  return {
    data: str('data'),
    inputs,
    labels: labels === 'none' ? null : labels,
    preset: oneOf(str('preset'), '--preset', ['ntu', 'none'] as const),
    output: str('output'),
    classAxis: str('class-axis') === undefined ? undefined : axisOption(str('class-axis')!),
    batchSize: optionalInt('batch-size'),
    limit: optionalInt('limit'),
    ep: oneOf(str('ep'), '--ep', ['cpu', 'cuda'] as const),
    threads: optionalInt('threads'),
  };
}
