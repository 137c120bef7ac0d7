// Random access to bytes without loading them: a file read at positions, or a deflate stream
// that inflates forward from a cursor (restarting only when asked to go back). The npy reader
// sits on top of this, so one code path serves .npy files and stored or deflated .npz members.
import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createInflateRaw } from 'node:zlib';
import { RankscopeError } from '../errors';

export interface ByteSource {
  /** Total bytes available (uncompressed size for deflated members). */
  readonly size: number;
  /** Exactly `length` bytes from `position`; CORRUPT if the source is shorter. */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Positioned reads of a byte range [start, start+size) of a file. */
export class FileRangeSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    private readonly start: number,
    readonly size: number,
    private readonly label: string,
    private readonly ownsHandle: boolean,
  ) {}

  static async open(path: string, label = path): Promise<FileRangeSource> {
    const handle = await openFile(path);
    const { size } = await handle.stat();
    return new FileRangeSource(handle, 0, size, label, true);
  }

  /** A window onto an already open file (an npz member); closing it leaves the file open. */
  static window(handle: FileHandle, start: number, size: number, label: string): FileRangeSource {
    return new FileRangeSource(handle, start, size, label, false);
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
    return out;
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
  private stream: ReturnType<typeof createInflateRaw> | undefined;
  /** Uncompressed offset of pending[0]. */
  private cursor = 0;
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly path: string,
    private readonly compressedStart: number,
    private readonly compressedSize: number,
    readonly size: number,
    private readonly label: string,
  ) {}

  private restart(): void {
    this.stream?.destroy();
    const file = this.compressedSize > 0
      ? createReadStream(this.path, { start: this.compressedStart, end: this.compressedStart + this.compressedSize - 1, highWaterMark: 1 << 20 })
      : createReadStream(this.path, { start: 0, end: -1 });
    const inflate = createInflateRaw({ chunkSize: 1 << 20 });
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
    }
    return out;
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
