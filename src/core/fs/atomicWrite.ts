// Every file Rankscope writes goes through here. The target is checked first: a regular file or
// nothing yet, in a folder that exists, never one of the inputs (after resolving links). The
// bytes go to a unique temp file in the same folder and a rename puts them in place, so a reader
// sees the old file or the whole new one, never a part. The temp file is removed when the write
// fails, when it is cancelled (a cancelled write never lands), and when the process exits under
// it (a second Ctrl-C).
import { randomBytes } from 'node:crypto';
import {
  accessSync, closeSync, constants, fsyncSync, lstatSync, mkdirSync, openSync, readlinkSync, realpathSync, renameSync, statSync,
  unlinkSync, writeSync, type Stats,
} from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../errors';

export interface OutputCheck {
  /** Files the output must not replace (the model read, its external data, a teacher). */
  inputs?: readonly (string | undefined)[];
  /** Create a missing parent folder (caches, report folders) instead of refusing. */
  createFolder?: boolean;
}

export interface AtomicWriteOptions extends OutputCheck {
  /** Checked before the temp file is made and again before the rename. */
  signal?: AbortSignal;
  /** fsync before the rename, so a crash leaves the old file or the new one (default true; caches skip it). */
  durable?: boolean;
}

/** A problem with an output path: exit 2, naming the path and what to do. */
function pathProblem(message: string, hint = 'Choose another output path.'): RankscopeError {
  return new RankscopeError('OUTPUT', message, hint);
}

/**
 * Checks that `path` can be written as a regular file and returns where the bytes will land
 * (a symlink to an existing file is followed: its target is replaced, the link kept).
 */
export function checkOutputPath(path: string, check: OutputCheck = {}): string {
  const abs = resolve(path);
  let target = abs;
  let info = lstatOrUndefined(abs);
  if (info?.isSymbolicLink()) {
    try {
      target = realpathSync(abs);
    } catch {
      throw pathProblem(`${path} is a symbolic link to ${readlinkSync(abs)}, which does not exist.`, 'Remove the link or choose another output path.');
    }
    info = statSync(target);
  }
  if (info?.isDirectory()) throw pathProblem(`${path} is a folder, not a file.`, 'Give the path of a file (it may be inside that folder).');
  if (info && !info.isFile()) {
    throw pathProblem(`${path} is ${kindOf(info)}, not a regular file; Rankscope writes only regular files.`, 'Give the path of a file to create or replace.');
  }
  checkFolder(dirname(target), path, check.createFolder === true);
  for (const input of check.inputs ?? []) {
    if (input !== undefined && sameFile(target, info, input)) {
      throw new RankscopeError('BAD_ARGUMENT',
        `The output ${path} is the input model${resolve(input) === abs ? '' : ` (${input})`}; Rankscope never overwrites a model.`, 'Choose another -o path.');
    }
  }
  return target;
}

/** The problem with `path` as an output, in words (for input boxes), or undefined when it can be written. */
export function outputPathProblem(path: string, check: OutputCheck = {}): string | undefined {
  try {
    checkOutputPath(path, check);
    return undefined;
  } catch (e) {
    if (e instanceof RankscopeError) return `${e.message}${e.hint ? ` ${e.hint}` : ''}`;
    throw e;
  }
}

/** Makes `folder` (and its parents) for outputs, or says why it cannot be one. */
export function ensureOutputFolder(folder: string): string {
  const abs = resolve(folder);
  const info = statOrUndefined(abs);
  if (info && !info.isDirectory()) throw pathProblem(`${folder} is ${kindOf(info)}, not a folder.`, 'Give the path of a folder to write into.');
  if (!info) checkFolder(abs, folder, true);
  return abs;
}

/** Writes `data` to `path` atomically; returns the path written (links resolved). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<string> {
  const file = await PendingFile.create(path, options);
  try {
    await file.writeAll(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    return await file.commit();
  } finally {
    await file.discard();
  }
}

/** Copies the file `source` to `path` atomically (a result made elsewhere, e.g. in a work folder); returns the path written. */
export async function copyFileAtomic(source: string, path: string, options: AtomicWriteOptions = {}): Promise<string> {
  const file = await PendingFile.create(path, options);
  try {
    const input = await open(source, 'r').catch((e: unknown) => { throw asWriteError(e, source); });
    try {
      const buffer = Buffer.allocUnsafe(CHUNK);
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, CHUNK, null);
        if (bytesRead === 0) break;
        await file.writeAll(buffer.subarray(0, bytesRead));
      }
    } finally {
      await input.close();
    }
    return await file.commit();
  } finally {
    await file.discard();
  }
}

/** The same, synchronously (caches written from synchronous code). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, options: Omit<AtomicWriteOptions, 'signal'> = {}): string {
  const target = checkOutputPath(path, options);
  const temp = tempPathFor(target);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx');
    live.add(temp);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, bytes.length - done);
    if (options.durable !== false) fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, checkOutputPath(path, options));
    return target;
  } catch (e) {
    throw asWriteError(e, path);
  } finally {
    if (fd !== undefined) closeSync(fd);
    removeTemp(temp);
  }
}

/**
 * A temp file next to `path`, for writers that stream (ONNX with external data): write through
 * `handle` or `writeAll`, then `commit` (or `commitAll` for files that land together);
 * `discard` in a finally removes it unless committed.
 */
export class PendingFile {
  private closed = false;
  private committed = false;

  private constructor(readonly path: string, readonly tempPath: string, readonly handle: FileHandle, private readonly options: AtomicWriteOptions) {}

  static async create(path: string, options: AtomicWriteOptions = {}): Promise<PendingFile> {
    throwIfCancelled(options.signal);
    const temp = tempPathFor(checkOutputPath(path, options));
    // 'wx': a fresh file; never follows a link someone placed at the temp name.
    const handle = await open(temp, 'wx').catch((e: unknown) => { throw asWriteError(e, path); });
    live.add(temp);
    return new PendingFile(path, temp, handle, options);
  }

  /** Writes all of `bytes` at the current position, checking for cancellation between chunks. */
  async writeAll(bytes: Uint8Array): Promise<void> {
    try {
      for (let done = 0; done < bytes.length;) {
        throwIfCancelled(this.options.signal);
        const { bytesWritten } = await this.handle.write(bytes, done, Math.min(CHUNK, bytes.length - done));
        done += bytesWritten;
      }
    } catch (e) {
      throw asWriteError(e, this.path);
    }
  }

  /** Renames the temp file over the target; returns the target. */
  async commit(): Promise<string> {
    return (await commitAll([this], this.options.signal))[0];
  }

  /** Removes the temp file unless it was committed; safe to call more than once. */
  async discard(): Promise<void> {
    if (this.committed) return;
    await this.close().catch(() => undefined);
    await rm(this.tempPath, { force: true });
    live.delete(this.tempPath);
  }

  /** Flushes and closes; then checks the target again (it may have changed while we wrote). */
  async stage(): Promise<string> {
    try {
      if (this.options.durable !== false) await this.handle.sync();
      await this.close();
    } catch (e) {
      throw asWriteError(e, this.path);
    }
    return checkOutputPath(this.path, this.options);
  }

  async land(target: string): Promise<void> {
    try {
      await rename(this.tempPath, target);
    } catch (e) {
      throw asWriteError(e, this.path);
    }
    this.committed = true;
    live.delete(this.tempPath);
  }

  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * Lands files that belong together (a model and its external data, in that order of the list):
 * all are flushed and checked, and a cancellation is honoured, before the first rename.
 */
export async function commitAll(files: readonly PendingFile[], signal?: AbortSignal): Promise<string[]> {
  const targets: string[] = [];
  for (const f of files) targets.push(await f.stage());
  throwIfCancelled(signal);
  for (let i = 0; i < files.length; i++) await files[i].land(targets[i]);
  return targets;
}

const CHUNK = 16 * 2 ** 20;

/** `.<name>.<pid>.<random>.tmp` in the target's folder: same file system (the rename is atomic), unique, hidden. */
function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target).slice(0, 200)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Temp files not yet renamed or removed; removed on process exit (a forced exit skips `finally`). */
const live = new Set<string>();
process.on('exit', () => {
  for (const temp of live) {
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
  }
});

function removeTemp(temp: string): void {
  try {
    unlinkSync(temp);
  } catch {
    // renamed or never made
  }
  live.delete(temp);
}

function checkFolder(folder: string, path: string, create: boolean): void {
  const info = statOrUndefined(folder);
  if (info && !info.isDirectory()) throw pathProblem(`Cannot write ${path}: ${folder} is a file, not a folder.`);
  if (!info) {
    const blocker = firstNonFolder(folder);
    if (blocker) throw pathProblem(`Cannot write ${path}: ${blocker} is a file, not a folder.`);
    if (!create) throw pathProblem(`Cannot write ${path}: the folder ${folder} does not exist.`, 'Create the folder first, or choose another output path.');
    try {
      mkdirSync(folder, { recursive: true });
    } catch (e) {
      throw pathProblem(`Cannot create the folder ${folder}: ${reason(e)}.`);
    }
  }
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw pathProblem(`Cannot write ${path}: no permission to write in ${folder}.`, 'Choose a folder you can write to.');
  }
}

/** The nearest existing ancestor of `folder` when it is not a folder (a file in the way). */
function firstNonFolder(folder: string): string | undefined {
  for (let dir = dirname(folder), prev = folder; dir !== prev; prev = dir, dir = dirname(dir)) {
    const info = statOrUndefined(dir);
    if (info) return info.isDirectory() ? undefined : dir;
  }
  return undefined;
}

function sameFile(target: string, targetInfo: Stats | undefined, input: string): boolean {
  const abs = resolve(input);
  let real = abs;
  try {
    real = realpathSync(abs);
  } catch {
    // an input that does not exist cannot be replaced
  }
  if (real === target) return true;
  const info = targetInfo && statOrUndefined(real);
  return info !== undefined && targetInfo !== undefined && info.dev === targetInfo.dev && info.ino === targetInfo.ino; // hard links
}

function kindOf(info: Stats): string {
  if (info.isFile()) return 'a file';
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a named pipe (FIFO)';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  return 'a special file';
}

function asWriteError(e: unknown, path: string): unknown {
  if (e instanceof RankscopeError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code) return e;
  const hint = code === 'ENOSPC' || code === 'EDQUOT' ? 'Free some space or write to another disk.' : 'Choose another output path.';
  return new RankscopeError('OUTPUT', `Cannot write ${path}: ${reason(e)}.`, hint);
}

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const words: Record<string, string> = {
    ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', EACCES: 'permission denied', EPERM: 'operation not permitted',
    EROFS: 'the file system is read-only', ENOTDIR: 'a part of the path is a file, not a folder', EISDIR: 'it is a folder',
    ENOENT: 'the folder does not exist', ENAMETOOLONG: 'the name is too long', EEXIST: 'a file is in the way',
  };
  return (err.code && words[err.code]) ?? err.message;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
