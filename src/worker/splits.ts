// Which split each fine-tuning figure comes from, in words: the CLI, the log, the notification and
// the fine-tune view say it the same way (from the worker's `splits`, protocol.ts SplitsInfo).
import { basename } from 'node:path';
import type { SplitsInfo, ValidationSplit } from './protocol';

const pct = (x: number): string => `${Math.round(100 * x * 10) / 10} %`;

/** "validation: 90 samples held out of x_train by subject (subjects 3, 17 of 19; 10 %, seed 0)". */
export function describeValidation(v: ValidationSplit): string {
  if (v.source === 'file') return `validation: ${v.arrays.join('/')} of ${basename(v.path)} (${v.samples} samples), given for validation`;
  const how = v.by === 'subject'
    ? `by subject (subject${v.subjects!.length === 1 ? '' : 's'} ${v.subjects!.join(', ')} of ${v.subjectsTotal}; ${pct(v.fraction)} asked, seed ${v.seed})`
    : `at random, stratified by class (${pct(v.fraction)}, seed ${v.seed})`;
  return `validation: ${v.samples} samples held out of ${v.arrays[0]} ${how}${v.note ? `. Note: ${v.note}` : ''}`;
}

/** "test: x_test/y_test of data.npz (405 samples), scored once with the best weights" or why there is none. */
export function describeTest(t: SplitsInfo['test']): string {
  if ('missing' in t) return `test: none (${t.missing})`;
  return `test: ${t.arrays.join('/')} of ${basename(t.path)} (${t.samples} samples), scored once with the best weights`;
}

/** Both, one line each. */
export function describeSplits(s: SplitsInfo): string[] {
  return [describeValidation(s.validation), describeTest(s.test)];
}
