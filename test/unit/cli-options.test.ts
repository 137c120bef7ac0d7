// cli/options.ts: the option readers every command shares (exit-2 errors naming the option), and
// the rule that commands share code through it rather than importing each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RankscopeError } from '../../src/core/errors';
import {
  cliOverrides, fractionOption, intOption, nameList, numberList, oneOf, optionalNumber, parseOptions, TASK_OPTIONS,
} from '../../src/cli/options';

function badArgument(pattern: RegExp) {
  return (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && pattern.test(e.message);
}

test('numbers, fractions, lists and choices: values, and errors that name the option', () => {
  assert.equal(intOption('12', '--runs', 0), 12);
  assert.equal(intOption('0', '--runs', 0), 0);
  assert.throws(() => intOption('0', '--rank'), badArgument(/^--rank must be an integer ≥ 1; got '0'\.$/));
  assert.throws(() => intOption('2.5', '--rank'), badArgument(/--rank must be an integer/));
  assert.equal(optionalNumber(undefined, '--lr'), undefined);
  assert.equal(optionalNumber('1e-3', '--lr'), 1e-3);
  assert.throws(() => optionalNumber('fast', '--lr'), badArgument(/^--lr must be a number; got 'fast'\.$/));
  assert.throws(() => optionalNumber('1.5', '--seed', true), badArgument(/--seed must be an integer/));
  assert.equal(fractionOption('50%', '--budget'), 0.5);
  assert.equal(fractionOption('0.25', '--budget'), 0.25);
  assert.throws(() => fractionOption('half', '--budget'), badArgument(/--budget must be a number \(or a percentage\)/));
  assert.deepEqual(numberList('0.1, 30%,0.5', '--levels'), [0.1, 0.3, 0.5]);
  assert.equal(numberList(undefined, '--levels'), undefined);
  assert.throws(() => numberList('0.1,x', '--levels'), badArgument(/--levels takes numbers separated by commas/));
  assert.deepEqual(nameList(' a, b.* ,,'), ['a', 'b.*']);
  assert.equal(oneOf('sgd', '--optimizer', ['adamw', 'sgd'] as const), 'sgd');
  assert.throws(() => oneOf('adam', '--optimizer', ['adamw', 'sgd'] as const), badArgument(/--optimizer must be one of adamw, sgd; got 'adam'/));
});

test('the shared task options parse into task-file fields', () => {
  const { values } = parseOptions(['--data', 'd.npz', '--input', 'x=x_test', '--labels', 'none', '--preset', 'ntu', '--batch-size', '8', '--ep', 'cpu'], TASK_OPTIONS);
  assert.deepEqual(cliOverrides(values), {
    data: 'd.npz', inputs: { x: 'x_test' }, labels: null, preset: 'ntu', output: undefined, classAxis: undefined, batchSize: 8, limit: undefined, ep: 'cpu', threads: undefined,
  });
  assert.throws(() => cliOverrides({ input: ['x'] }), badArgument(/--input takes NAME=ARRAY; got 'x'/));
  assert.throws(() => cliOverrides({ ep: 'tpu' }), badArgument(/--ep must be one of cpu, cuda/));
  assert.throws(() => cliOverrides({ 'batch-size': '0' }), badArgument(/--batch-size must be an integer ≥ 1/));
  assert.throws(() => parseOptions(['--frobnicate'], TASK_OPTIONS), badArgument(/Unknown option '--frobnicate'/));
});

test('commands share code through options.ts, never by importing a sibling command', () => {
  const dir = join(__dirname, '../../src/cli');
  const commands = ['inspect', 'spectrum', 'compress', 'eval', 'sweep', 'finetune', 'demo'];
  // Type-only imports (demoReport.ts renders demo's summary) carry no code. Formatting
  // (formatCount/formatBytes) is moving from inspect.ts to the core (issue 11, move 2).
  const pending = new Set(['compress.ts → ./inspect']);
  const offenders: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'main.ts')) {
    for (const [, target] of readFileSync(join(dir, file), 'utf8').matchAll(/^import (?!type )[^;]*? from '(\.\/\w+)'/gms)) {
      const edge = `${file} → ${target}`;
      if (commands.includes(target.slice(2)) && !pending.has(edge)) offenders.push(edge);
    }
  }
  assert.deepEqual(offenders, []);
});
