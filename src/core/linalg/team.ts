// Two threads on one matrix. A large job's worker (the owner) and an idle worker of the pool (the
// helper) share the kernel memory (a shared WebAssembly.Memory) and a small control block: the
// owner cuts a level-3 step into independent tasks (each a sequence of kernel calls), posts them,
// and both threads claim tasks one at a time (an atomic counter) until none are left; the owner
// then waits only for the task the helper is still running. Claiming dynamically keeps both
// threads busy on a shared, loaded machine, where a fixed half could leave the owner waiting for
// a descheduled helper. Without a helper (none free, or not yet attached) the owner runs every
// task itself, so algorithms are written once. A helper attaches whenever the pool has one to
// spare, even in the middle of a job.
import { kernels, newKernelMemory, releaseKernelMemory, useKernelMemory, type KernelExports } from './wasm';

/** What the pool hands to both threads of a team (structured-cloned: both share the buffers). */
export interface TeamHandle {
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
}

/** A kernel call: the export's name and its arguments. */
export type KernelCall = [keyof KernelExports, ...number[]];
/** A task: kernel calls run in order by one thread; tasks of one step are independent. */
export type Task = KernelCall[];

/** Smaller side from which one matrix is worth two threads (its steps then take milliseconds). */
export const TEAM_MIN_ORDER = 1024;

/** A job of one matrix at least TEAM_MIN_ORDER on its smaller side: the pool's teamUp test. */
export function worthATeam(job: { matrices: { rows: number; cols: number }[] }): boolean {
  return job.matrices.length === 1 && Math.min(job.matrices[0].rows, job.matrices[0].cols) >= TEAM_MIN_ORDER;
}

const FUNCTIONS: (keyof KernelExports)[] = ['rotateRows', 'reflectRows', 'matmulAdd', 'packStrips', 'packRowStrips', 'gemmPacked', 'dotRows', 'axpyRows', 'symvLower'];
// Control words: SEQ (the step, bumped to wake the helper), CLAIM (step << INDEX_BITS | next task),
// COMPLETED (tasks finished in this step), TOTAL (tasks in it), ATTACHED, STOP.
const SEQ = 0, CLAIM = 1, COMPLETED = 2, TOTAL = 3, ATTACHED = 4, STOP = 5;
const INDEX_BITS = 20;
const STEP_MASK = (1 << (31 - INDEX_BITS)) - 1;
/** Doubles of encoded tasks one step can carry (a task table, then the calls); larger steps run on the owner. */
const CAPACITY = 1 << 18;
const HEADER_BYTES = 64;
/** Helper and owner wake up at least this often (ms) to look at the flags. */
const POLL_MS = 1000;

export function newTeam(): TeamHandle {
  return { memory: newKernelMemory(), control: new SharedArrayBuffer(HEADER_BYTES + 8 * CAPACITY) };
}

interface Owner {
  flags: Int32Array;
  buffer: Float64Array;
  step: number;
}
let owner: Owner | undefined;

/** Owner side: this thread's kernels run on the team's memory from now on, and runTasks may use the helper. */
export function leadTeam(team: TeamHandle): void {
  useKernelMemory(team.memory);
  const flags = new Int32Array(team.control, 0, 16);
  owner = { flags, buffer: new Float64Array(team.control, HEADER_BYTES, CAPACITY), step: Atomics.load(flags, SEQ) };
}

/** Owner side, at the end of the job: releases the helper (it returns to the pool). */
export function endTeam(): void {
  if (!owner) return;
  Atomics.store(owner.flags, STOP, 1);
  Atomics.add(owner.flags, SEQ, 1);
  Atomics.notify(owner.flags, SEQ);
  owner = undefined;
}

/** 2 while a helper is attached, else 1: callers skip cutting work too small to pay the round trip. */
export function teamSize(): 1 | 2 {
  return owner && Atomics.load(owner.flags, ATTACHED) === 1 ? 2 : 1;
}

/** Runs kernel calls on this thread. */
export function runKernelCalls(calls: KernelCall[]): void {
  const k = kernels() as unknown as Record<string, (...args: number[]) => void>;
  for (const [name, ...args] of calls) k[name](...args);
}

/** Tasks as [task count, offsets…, then per task: call count, (function, argc, args…)…]; undefined if too big. */
function encode(tasks: Task[], into: Float64Array): boolean {
  let at = 1 + tasks.length;
  if (at > into.length) return false;
  into[0] = tasks.length;
  for (const [t, calls] of tasks.entries()) {
    into[1 + t] = at;
    into[at++] = calls.length;
    for (const [name, ...args] of calls) {
      if (at + 2 + args.length > into.length) return false;
      into[at++] = FUNCTIONS.indexOf(name);
      into[at++] = args.length;
      for (const a of args) into[at++] = a;
    }
  }
  return true;
}

function runEncoded(buffer: Float64Array, task: number): void {
  const k = kernels() as unknown as Record<string, (...args: number[]) => void>;
  let at = buffer[1 + task];
  const count = buffer[at++];
  for (let c = 0; c < count; c++) {
    const name = FUNCTIONS[buffer[at]];
    const argc = buffer[at + 1];
    k[name](...buffer.subarray(at + 2, at + 2 + argc));
    at += 2 + argc;
  }
}

/** The next unclaimed task of `step`, or −1 when the step has none left (or is over). */
function claim(flags: Int32Array, step: number, total: number): number {
  for (;;) {
    const word = Atomics.load(flags, CLAIM);
    if (word >>> INDEX_BITS !== (step & STEP_MASK)) return -1;
    const index = word & ((1 << INDEX_BITS) - 1);
    if (index >= total) return -1;
    if (Atomics.compareExchange(flags, CLAIM, word, word + 1) === word) return index;
  }
}

/**
 * Runs independent tasks (no two write the same memory) on this thread and, when one is attached,
 * on the helper, each task by whichever thread claims it first; returns when all are done.
 */
export function runTasks(tasks: Task[]): void {
  const o = owner;
  if (!o || tasks.length < 2 || Atomics.load(o.flags, ATTACHED) !== 1 || tasks.length >= 1 << INDEX_BITS || !encode(tasks, o.buffer)) {
    for (const t of tasks) runKernelCalls(t);
    return;
  }
  const step = (o.step = (o.step + 1) & STEP_MASK);
  const { flags } = o;
  Atomics.store(flags, TOTAL, tasks.length);
  Atomics.store(flags, COMPLETED, 0);
  Atomics.store(flags, CLAIM, step << INDEX_BITS);
  Atomics.store(flags, SEQ, step);
  Atomics.notify(flags, SEQ);
  for (let t = claim(flags, step, tasks.length); t >= 0; t = claim(flags, step, tasks.length)) {
    runKernelCalls(tasks[t]);
    Atomics.add(flags, COMPLETED, 1);
  }
  for (let done = Atomics.load(flags, COMPLETED); done < tasks.length; done = Atomics.load(flags, COMPLETED)) Atomics.wait(flags, COMPLETED, done, POLL_MS);
}

/**
 * One kernel call over rows [0, rows) as `pieces` tasks over row ranges (multiples of 4, so 4-row
 * tiles stay whole), claimed by the team's threads. `call(r0, r1)` makes the call for a range.
 */
export function splitRows(rows: number, call: (r0: number, r1: number) => KernelCall, pieces = 4): void {
  if (teamSize() === 1) {
    runKernelCalls([call(0, rows)]);
    return;
  }
  const step = Math.max(4, Math.ceil(rows / pieces / 4) * 4);
  const tasks: Task[] = [];
  for (let r0 = 0; r0 < rows; r0 += step) tasks.push([call(r0, Math.min(rows, r0 + step))]);
  runTasks(tasks);
}

/**
 * Helper side (a pool worker with nothing else to do): claims the owner's tasks on the team's
 * memory until the owner ends the job, then drops the memory. Blocks this thread meanwhile.
 */
export function assist(team: TeamHandle): void {
  useKernelMemory(team.memory);
  const flags = new Int32Array(team.control, 0, 16);
  const buffer = new Float64Array(team.control, HEADER_BYTES, CAPACITY);
  let seen = Atomics.load(flags, SEQ);
  Atomics.store(flags, ATTACHED, 1);
  try {
    for (;;) {
      while (Atomics.load(flags, SEQ) === seen && Atomics.load(flags, STOP) === 0) Atomics.wait(flags, SEQ, seen, POLL_MS);
      if (Atomics.load(flags, STOP) === 1) return;
      seen = Atomics.load(flags, SEQ);
      const total = Atomics.load(flags, TOTAL);
      for (let t = claim(flags, seen, total); t >= 0; t = claim(flags, seen, total)) {
        runEncoded(buffer, t);
        if (Atomics.add(flags, COMPLETED, 1) + 1 === total) Atomics.notify(flags, COMPLETED);
      }
    }
  } finally {
    releaseKernelMemory();
  }
}
