// `rankscope torch-path`: the folder holding the `rankscope_torch` Python package (shipped with
// the CLI and the extension), for PYTHONPATH in the user's own training code.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { RankscopeError } from '../core/errors';
import { workerPythonPath } from '../worker/client';
import type { Command } from './command';
import { parseOptions } from './options';

export const torchPathCommand: Command = {
  name: 'torch-path',
  summary: 'Print the folder to put on PYTHONPATH for `import rankscope_torch` (apply_factors, factorize).',
  usage: `Usage: rankscope torch-path

  Prints the folder that holds the rankscope_torch package, e.g.
    export PYTHONPATH="$(rankscope torch-path):$PYTHONPATH"
  then in Python: from rankscope_torch import apply_factors (docs/pytorch.md).`,
  async run(argv, io) {
    const { positionals } = parseOptions(argv, {});
    if (positionals.length) throw new RankscopeError('BAD_ARGUMENT', 'torch-path takes no arguments.', 'Usage: rankscope torch-path');
    const dir = workerPythonPath();
    if (!existsSync(join(dir, 'rankscope_torch', '__init__.py'))) {
      throw new RankscopeError('NOT_FOUND', `The rankscope_torch package is missing from ${dir}.`, 'Reinstall Rankscope.');
    }
    io.out(dir);
    return 0;
  },
};
