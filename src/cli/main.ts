// `rankscope <command> …`: dispatch, and the one place that turns errors into exit codes.
import { isRankscopeError } from '../core/errors';
import type { Command, CommandIO } from './command';
import { evalCommand } from './eval';
import { sweepCommand } from './sweep';
import { inspectCommand } from './inspect';
import { compressCommand } from './compress';
import { finetuneCommand } from './finetune';
import { demoCommand } from './demo';
import { spectrumCommand } from './spectrum';
import { torchPathCommand } from './torchPath';

// Each command lives in its own file and is added here.
const commands: Command[] = [inspectCommand, spectrumCommand, compressCommand, evalCommand, sweepCommand, finetuneCommand, demoCommand, torchPathCommand];

function help(out: (s: string) => void): void {
  out('rankscope: inspect and compress neural-network layers by low-rank SVD factorization.\n');
  out('Usage: rankscope <command> [options]   (add --debug for stack traces)\n');
  for (const c of commands) out(`  ${c.name.padEnd(10)} ${c.summary}`);
  out('\nRun `rankscope help <command>` for a command\'s options.');
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const [name, ...rest] = args;
  const io: CommandIO = {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    signal: abortOnSigint(),
  };
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const c = commands.find((x) => x.name === rest[0]);
    if (c) io.out(c.usage);
    else help(io.out);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.err(`rankscope: unknown command '${name}'. Run \`rankscope help\` for the list.`);
    return 2;
  }
  try {
    const code = await command.run(rest, io);
    // After Ctrl-C the run ends as cancelled, even when the work was past its last check.
    return io.signal.aborted ? 130 : code;
  } catch (e) {
    if (isRankscopeError(e)) {
      io.err(`rankscope ${name}: ${e.message}${e.hint ? ` ${e.hint}` : ''}`);
      if (debug) io.err(e.stack ?? '');
      return e.code === 'CANCELLED' ? 130 : 2;
    }
    io.err(`rankscope ${name}: internal error: ${(e as Error)?.message ?? e}`);
    io.err(debug ? (e as Error)?.stack ?? '' : 'Run again with --debug for the stack trace, and please report it.');
    return 1;
  }
}

/** First Ctrl-C asks long work to stop cleanly; a second one exits at once. */
function abortOnSigint(): AbortSignal {
  const controller = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nCancelling… (Ctrl-C again to force)\n');
    controller.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  return controller.signal;
}

/**
 * Exits once stdout and stderr have handed every byte to the OS: process.exit() alone drops
 * what a pipe has not taken yet (output through `| wc -c` stopped at 64 KiB).
 */
async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  // Writes complete in order: the callback of an empty write comes after every earlier byte.
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** A reader that stops early (`| head`) closes the pipe: stop as a killed-by-SIGPIPE process would, quietly. */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(128 + 13);
    throw e;
  });
}

if (require.main === module) {
  quietOnClosedPipe(process.stdout);
  void main(process.argv.slice(2)).then(exitWhenFlushed);
}
