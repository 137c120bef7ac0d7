// Two threads on one matrix. A large job's worker (the owner) and an idle worker of the pool (the
// helper) share the kernel memory (a shared WebAssembly.Memory) and a small control block: the
// owner splits a level-3 step in two, posts the helper's half as a list of kernel calls, runs its
// own half, and waits (Atomics) for the helper's. Without a helper (none free, or not yet
// attached) the owner runs both halves itself, so algorithms are written once, as two halves.
// A helper attaches whenever the pool has one to spare, even in the middle of a job.
import { kernels, newKernelMemory, releaseKernelMemory, useKernelMemory, type KernelExports } from './wasm';

/** What the pool hands to both threads of a team (structured-cloned: both share the buffers). */
export interface TeamHandle {
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
}

/** A kernel call for the helper: the export's name and its arguments. */
export type KernelCall = [keyof KernelExports, ...number[]];

const FUNCTIONS: (keyof KernelExports)[] = ['rotateRows', 'reflectRows', 'matmulAdd', 'packStrips', 'packRowStrips', 'gemmPacked', 'dotRows', 'axpyRows', 'symvLower'];
const SEQ = 0, DONE = 1, ATTACHED = 2, STOP = 3;
/** Doubles of encoded calls one split can carry; larger halves run on the owner. */
const CAPACITY = 1 << 17;
const HEADER_BYTES = 64;
/** Helper and owner wake up at least this often (ms) to look at the flags. */
const POLL_MS = 1000;

/** Smaller side from which one matrix is worth two threads (the split steps then take milliseconds). */
export const TEAM_MIN_ORDER = 1024;

/** A job of one matrix at least TEAM_MIN_ORDER on its smaller side: the pool's teamUp test. */
export function worthATeam(job: { matrices: { rows: number; cols: number }[] }): boolean {
  return job.matrices.length === 1 && Math.min(job.matrices[0].rows, job.matrices[0].cols) >= TEAM_MIN_ORDER;
}

export function newTeam(): TeamHandle {
  return { memory: newKernelMemory(), control: new SharedArrayBuffer(HEADER_BYTES + 8 * CAPACITY) };
}

interface Owner {
  flags: Int32Array;
  calls: Float64Array;
  seq: number;
}
let owner: Owner | undefined;

/** Owner side: this thread's kernels run on the team's memory from now on, and split() may use the helper. */
export function leadTeam(team: TeamHandle): void {
  useKernelMemory(team.memory);
  owner = { flags: new Int32Array(team.control, 0, 8), calls: new Float64Array(team.control, HEADER_BYTES, CAPACITY), seq: Atomics.load(new Int32Array(team.control, 0, 8), SEQ) };
}

/** Owner side, at the end of the job: releases the helper (it returns to the pool). */
export function endTeam(): void {
  if (!owner) return;
  Atomics.store(owner.flags, STOP, 1);
  Atomics.add(owner.flags, SEQ, 1);
  Atomics.notify(owner.flags, SEQ);
  owner = undefined;
}

/** 2 while a helper is attached, else 1: callers skip splitting work too small to pay the round trip. */
export function teamSize(): 1 | 2 {
  return owner && Atomics.load(owner.flags, ATTACHED) === 1 ? 2 : 1;
}

function encode(calls: KernelCall[], into: Float64Array): number {
  let at = 0;
  for (const [name, ...args] of calls) {
    if (at + 2 + args.length > into.length) return -1;
    into[at++] = FUNCTIONS.indexOf(name);
    into[at++] = args.length;
    for (const a of args) into[at++] = a;
  }
  return at;
}

/** Runs kernel calls on this thread. */
export function runKernelCalls(calls: KernelCall[]): void {
  const k = kernels() as unknown as Record<string, (...args: number[]) => void>;
  for (const [name, ...args] of calls) k[name](...args);
}

function runEncoded(buffer: Float64Array, length: number): void {
  const k = kernels() as unknown as Record<string, (...args: number[]) => void>;
  for (let at = 0; at < length;) {
    const name = FUNCTIONS[buffer[at]];
    const argc = buffer[at + 1];
    k[name](...buffer.subarray(at + 2, at + 2 + argc));
    at += 2 + argc;
  }
}

/**
 * Runs `mine` on this thread and `theirs` on the helper when one is attached (else here, after
 * `mine`); returns when both are done. The halves must not write the same memory.
 */
export function split(theirs: KernelCall[], mine: () => void): void {
  const o = owner;
  if (!o || theirs.length === 0 || Atomics.load(o.flags, ATTACHED) !== 1) {
    mine();
    runKernelCalls(theirs);
    return;
  }
  // Length first, in the header's fifth slot; calls after.
  const length = encode(theirs, o.calls);
  if (length < 0) {
    mine();
    runKernelCalls(theirs);
    return;
  }
  o.flags[4] = length;
  const seq = ++o.seq;
  Atomics.store(o.flags, SEQ, seq);
  Atomics.notify(o.flags, SEQ);
  mine();
  for (let done = Atomics.load(o.flags, DONE); done !== seq; done = Atomics.load(o.flags, DONE)) Atomics.wait(o.flags, DONE, done, POLL_MS);
}

/**
 * One kernel call over rows [0, rows), as two calls over [0, h) here and [h, rows) on the helper
 * (h a multiple of 4, so 4-row tiles stay whole). `call(r0, r1)` makes the call for a row range.
 */
export function splitRows(rows: number, call: (r0: number, r1: number) => KernelCall): void {
  const h = teamSize() === 2 ? Math.min(rows, Math.ceil(rows / 8) * 4) : rows;
  split(h < rows ? [call(h, rows)] : [], () => runKernelCalls([call(0, h)]));
}

/**
 * Helper side (a pool worker with nothing else to do): runs the owner's halves on the team's
 * memory until the owner ends the job, then drops the memory. Blocks this thread meanwhile.
 */
export function assist(team: TeamHandle): void {
  useKernelMemory(team.memory);
  const flags = new Int32Array(team.control, 0, 8);
  const calls = new Float64Array(team.control, HEADER_BYTES, CAPACITY);
  let seen = Atomics.load(flags, SEQ);
  Atomics.store(flags, ATTACHED, 1);
  try {
    for (;;) {
      while (Atomics.load(flags, SEQ) === seen && Atomics.load(flags, STOP) === 0) Atomics.wait(flags, SEQ, seen, POLL_MS);
      if (Atomics.load(flags, STOP) === 1) return;
      seen = Atomics.load(flags, SEQ);
      runEncoded(calls, flags[4]);
      Atomics.store(flags, DONE, seen);
      Atomics.notify(flags, DONE);
    }
  } finally {
    releaseKernelMemory();
  }
}
