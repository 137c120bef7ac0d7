// For assert.rejects/throws: the error is a RankscopeError with this code, and its message and
// hint together match the pattern.
import assert from 'node:assert/strict';
import { RankscopeError } from '../../src/core/errors';

export function isError(code: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RankscopeError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(`${e.message} ${e.hint ?? ''}`, pattern);
    return true;
  };
}
