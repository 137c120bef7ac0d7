// A CLI command: one per file (inspect.ts, spectrum.ts, …), registered in main.ts. Commands
// share option parsing through options.ts, never by importing each other.

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
