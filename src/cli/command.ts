// A CLI command: one per file (inspect.ts, spectrum.ts, …), registered in main.ts.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { RankscopeError } from '../core/errors';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Returns the exit code. Throw RankscopeError for bad input (exit 2, one line). */
  run(argv: string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Fires on Ctrl-C; long work must stop and clean up. */
  signal: AbortSignal;
}

/** node:util parseArgs with our error type, so unknown options are a clean exit 2. */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new RankscopeError('BAD_ARGUMENT', (e as Error).message, 'Run `rankscope help` for usage.');
  }
}
