// One error type for everything a user can cause (bad file, bad option, bad data). The CLI
// prints `message` (and `hint`) on one line with exit code 2; the extension shows it as a
// notification. Anything else that escapes is a bug and keeps its stack.

export type ErrorCode =
  | 'NOT_FOUND'        // a file or layer that does not exist
  | 'OUTPUT'           // an output path that cannot be written (no folder, not a regular file, disk full)
  | 'NOT_ONNX'         // the file is not an ONNX model
  | 'CORRUPT'          // truncated or corrupt protobuf / npy / cache entry
  | 'EXTERNAL_DATA'    // missing or short external-data file
  | 'UNSUPPORTED'      // an op, dtype or layout we do not handle
  | 'BAD_ARGUMENT'     // an option out of range, output == input, …
  | 'BUDGET_UNREACHABLE' // a parameter budget no allocation of ranks can meet (a sweep skips that point)
  | 'SHAPE_MISMATCH'   // data that does not fit the model's inputs
  | 'NUMERIC'          // NaN/Inf in a weight
  | 'PLAN_MISMATCH'    // a plan applied to a model whose weights differ
  | 'CANCELLED'
  | 'WORKER'           // the Python worker failed (missing torch, crash, OOM)
  | 'RUNTIME';         // ONNX Runtime refused the model or an execution provider

export class RankscopeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** What the user can do about it. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'RankscopeError';
  }
}

export function isRankscopeError(e: unknown): e is RankscopeError {
  return e instanceof RankscopeError;
}

export function cancelled(): RankscopeError {
  return new RankscopeError('CANCELLED', 'Cancelled.');
}

/** Throws CANCELLED if the signal fired; call between units of long work. */
export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw cancelled();
}
