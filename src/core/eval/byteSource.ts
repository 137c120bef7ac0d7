// Random access to bytes without loading them: a file read at positions, or a deflate stream
// that inflates forward from a cursor (restarting only when asked to go back). The npy reader
// sits on top of this, so one code path serves .npy files and stored or deflated .npz members.
// A zip member's CRC-32 is checked on the way: bytes read in order from the start feed it as
// they pass (a full pass costs nothing extra), verify() reads whatever was not checked yet.
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import * as zlib from 'node:zlib';
import { RankscopeError, throwIfCancelled } from '../errors';

export interface ByteSource {
  /** Total bytes available (uncompressed size for deflated members). */
  readonly size: number;
  /** Exactly `length` bytes from `position`; CORRUPT if the source is shorter. */
  read(position: number, length: number): Promise<Uint8Array>;
  /** Completes the integrity check (a zip member's CRC-32), reading what has not been checked; CORRUPT when it fails. */
  verify(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * The running CRC-32 of a zip member over the bytes [0, checkedUpTo) seen so far. Bytes are
 * folded in only where they extend that prefix, so random or repeated reads are harmless; when
 * the prefix covers the member the CRC must equal the central directory's, or it is CORRUPT.
 */
export class MemberChecksum {
  private crc = 0;
  checkedUpTo = 0;
  /** Once failed, every later read of the member fails too: damaged data is never served. */
  private failure: RankscopeError | undefined;

  constructor(private readonly expected: number, private readonly size: number, private readonly label: string) {
    if (size === 0) this.compare();
  }

  get complete(): boolean {
    return this.checkedUpTo >= this.size;
  }

  /** `bytes` found at uncompressed offset `position`. */
  see(position: number, bytes: Uint8Array): void {
    if (this.failure) throw this.failure;
    const end = position + bytes.length;
    if (this.complete || position > this.checkedUpTo || end <= this.checkedUpTo) return;
    this.crc = crc32(bytes.subarray(this.checkedUpTo - position, Math.min(bytes.length, this.size - position)), this.crc);
    this.checkedUpTo = Math.min(end, this.size);
    if (this.complete) this.compare();
  }

  /** Throws the failure, if the check has failed. */
  assertGood(): void {
    if (this.failure) throw this.failure;
  }

  private compare(): void {
    if (this.crc >>> 0 !== this.expected >>> 0) {
      const hex = (x: number) => (x >>> 0).toString(16).padStart(8, '0');
      this.failure = new RankscopeError('CORRUPT', `${this.label}: the member's data fails its CRC-32 check (the archive says ${hex(this.expected)}, the data gives ${hex(this.crc)}); the file is damaged.`,
        'Write the .npz again (numpy.savez), or copy it again.');
      throw this.failure;
    }
  }
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** zlib's CRC-32 (Node ≥ 20.15 has it natively); a table-driven one where it does not. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (native) return native(bytes, previous);
  let c = ~previous;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Reads [checkedUpTo, size) through `read` in blocks, so the checksum sees every byte. */
async function readRemainder(source: ByteSource, checksum: MemberChecksum | undefined, signal?: AbortSignal): Promise<void> {
  const BLOCK = 4 << 20;
  while (checksum && !checksum.complete) {
    throwIfCancelled(signal);
    const at = checksum.checkedUpTo;
    await source.read(at, Math.min(BLOCK, source.size - at));
  }
  checksum?.assertGood();
}

/** Positioned reads of a byte range [start, start+size) of a file. */
export class FileRangeSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    private readonly start: number,
    readonly size: number,
    private readonly label: string,
    private readonly ownsHandle: boolean,
    private readonly checksum?: MemberChecksum,
  ) {}

  static async open(path: string, label = path): Promise<FileRangeSource> {
    const handle = await openFile(path);
    const { size } = await handle.stat();
    return new FileRangeSource(handle, 0, size, label, true);
  }

  /** A window onto an already open file (a stored npz member, with its checksum); closing it leaves the file open. */
  static window(handle: FileHandle, start: number, size: number, label: string, checksum?: MemberChecksum): FileRangeSource {
    return new FileRangeSource(handle, start, size, label, false, checksum);
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    if (position < 0 || position + length > this.size) {
      throw new RankscopeError('CORRUPT', `${this.label}: truncated (wanted bytes ${position}..${position + length}, have ${this.size}).`, 'The file may be incomplete; write it again.');
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, this.start + position + done);
      if (bytesRead === 0) throw new RankscopeError('CORRUPT', `${this.label}: file ended early at byte ${this.start + position + done}.`, 'The file may be incomplete; write it again.');
      done += bytesRead;
    }
    this.checksum?.see(position, out);
    return out;
  }

  verify(signal?: AbortSignal): Promise<void> {
    return readRemainder(this, this.checksum, signal);
  }

  async close(): Promise<void> {
    if (this.ownsHandle) await this.handle.close();
  }
}

/**
 * A raw-deflate member of a zip file, inflated as a stream. Reads that move forward keep
 * inflating from where the last one stopped (batch-by-batch reads cost one pass over the data);
 * a read behind the cursor restarts the stream from the member's start.
 */
export class InflateSource implements ByteSource {
  private iterator: AsyncIterator<Buffer> | undefined;
  private stream: ReturnType<typeof zlib.createInflateRaw> | undefined;
  /** Uncompressed offset of pending[0]. */
  private cursor = 0;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly path: string,
    private readonly compressedStart: number,
    private readonly compressedSize: number,
    readonly size: number,
    private readonly label: string,
    private readonly checksum?: MemberChecksum,
  ) {}

  private restart(): void {
    this.stream?.destroy();
    const file = this.compressedSize > 0
      ? createReadStream(this.path, { start: this.compressedStart, end: this.compressedStart + this.compressedSize - 1, highWaterMark: 1 << 20 })
      : createReadStream(this.path, { start: 0, end: -1 });
    const inflate = zlib.createInflateRaw({ chunkSize: 1 << 20 });
    file.on('error', (e) => inflate.destroy(e));
    this.stream = file.pipe(inflate);
    this.iterator = this.stream[Symbol.asyncIterator]();
    this.cursor = 0;
    this.pending = Buffer.alloc(0);
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    if (position < 0 || position + length > this.size) {
      throw new RankscopeError('CORRUPT', `${this.label}: truncated (wanted bytes ${position}..${position + length}, have ${this.size}).`);
    }
    if (!this.iterator || position < this.cursor) this.restart();
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      // Drop what lies before the wanted position, copy what overlaps it.
      const skip = Math.min(this.pending.length, Math.max(0, position + filled - this.cursor));
      if (skip > 0) {
        this.pending = this.pending.subarray(skip);
        this.cursor += skip;
      }
      if (this.pending.length > 0) {
        const take = Math.min(this.pending.length, length - filled);
        out.set(this.pending.subarray(0, take), filled);
        filled += take;
        this.pending = this.pending.subarray(take);
        this.cursor += take;
        continue;
      }
      let next: IteratorResult<Buffer>;
      try {
        next = await this.iterator!.next();
      } catch (e) {
        this.iterator = undefined;
        throw new RankscopeError('CORRUPT', `${this.label}: cannot inflate (${(e as Error).message}).`, 'The archive is damaged; write it again.');
      }
      if (next.done) {
        this.iterator = undefined;
        throw new RankscopeError('CORRUPT', `${this.label}: compressed data ends at byte ${this.cursor}, expected ${this.size}.`);
      }
      this.pending = next.value;
      this.checksum?.see(this.cursor, this.pending); // every inflated byte, in order, as it arrives
    }
    return out;
  }

  verify(signal?: AbortSignal): Promise<void> {
    return readRemainder(this, this.checksum, signal);
  }

  async close(): Promise<void> {
    this.stream?.destroy();
    this.iterator = undefined;
  }
}

export async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new RankscopeError('NOT_FOUND', `${path}: no such file.`, 'Check the path (relative paths are resolved from the current folder or the task file).');
    if (code === 'EISDIR') throw new RankscopeError('BAD_ARGUMENT', `${path}: is a folder, not a data file.`);
    throw e;
  }
}
