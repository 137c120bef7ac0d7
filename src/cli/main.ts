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
    return await command.run(rest, io);
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

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
