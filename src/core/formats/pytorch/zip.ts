// The zip container torch.save has written since PyTorch 1.6: read the central directory once
// (from the file's tail), then each entry by offset when it is asked for. torch stores every
// entry uncompressed and 64-byte aligned, so a tensor's bytes are one positioned read; a
// deflated entry (a checkpoint re-zipped by another tool) is inflated on read instead.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { RankscopeError } from '../../errors';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** A zip file opened by its central directory; entry bytes are read synchronously on demand. */
export class ZipArchive {
  private readonly dataOffsets = new Map<string, number>();

  private constructor(
    readonly path: string,
    readonly fileSize: number,
    private readonly mtimeMs: number,
    readonly entries: ReadonlyMap<string, ZipEntry>,
  ) {}

  static async open(path: string): Promise<ZipArchive> {
    const name = basename(path);
    const corrupt = (why: string) => new RankscopeError('CORRUPT', `${name} is not a readable zip archive (${why}).`,
      'The checkpoint may be truncated; save it again with torch.save.');
    const fh = await open(path, 'r');
    try {
      const { size, mtimeMs } = await fh.stat();
      const read = async (position: number, length: number): Promise<Buffer> => {
        if (position < 0 || length < 0 || position + length > size) throw corrupt('a record points outside the file');
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, position);
        if (bytesRead !== length) throw corrupt('short read');
        return buf;
      };
      // The end-of-central-directory record: 22 bytes plus a comment of up to 65535.
      const tailLength = Math.min(size, 22 + 65535 + 20);
      const tail = await read(size - tailLength, tailLength);
      let at = -1;
      for (let i = tail.length - 22; i >= 0; i--) {
        if (tail.readUInt32LE(i) === EOCD) { at = i; break; }
      }
      if (at < 0) throw corrupt('no end-of-central-directory record');
      let count = tail.readUInt16LE(at + 10);
      let cdSize = tail.readUInt32LE(at + 12);
      let cdOffset = tail.readUInt32LE(at + 16);
      if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
        const loc = at - 20;
        if (loc < 0 || tail.readUInt32LE(loc) !== ZIP64_LOCATOR) throw corrupt('zip64 locator missing');
        const z64 = await read(Number(tail.readBigUInt64LE(loc + 8)), 56);
        if (z64.readUInt32LE(0) !== ZIP64_EOCD) throw corrupt('zip64 end record missing');
        count = Number(z64.readBigUInt64LE(32));
        cdSize = Number(z64.readBigUInt64LE(40));
        cdOffset = Number(z64.readBigUInt64LE(48));
      }
      const cd = await read(cdOffset, cdSize);
      const entries = new Map<string, ZipEntry>();
      let p = 0;
      for (let i = 0; i < count; i++) {
        if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw corrupt('bad central directory entry');
        const method = cd.readUInt16LE(p + 10);
        let compressedSize = cd.readUInt32LE(p + 20);
        let entrySize = cd.readUInt32LE(p + 24);
        const nameLength = cd.readUInt16LE(p + 28);
        const extraLength = cd.readUInt16LE(p + 30);
        const commentLength = cd.readUInt16LE(p + 32);
        let localHeaderOffset = cd.readUInt32LE(p + 42);
        const entryName = cd.toString('utf8', p + 46, p + 46 + nameLength);
        // Zip64 extra field: the 64-bit values of the fields that read 0xFFFFFFFF, in this order.
        let e = p + 46 + nameLength;
        const extraEnd = e + extraLength;
        while (e + 4 <= extraEnd) {
          const id = cd.readUInt16LE(e);
          const len = cd.readUInt16LE(e + 2);
          if (id === 0x0001) {
            let q = e + 4;
            if (entrySize === 0xffffffff) { entrySize = Number(cd.readBigUInt64LE(q)); q += 8; }
            if (compressedSize === 0xffffffff) { compressedSize = Number(cd.readBigUInt64LE(q)); q += 8; }
            if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(cd.readBigUInt64LE(q));
          }
          e += 4 + len;
        }
        entries.set(entryName, { name: entryName, method, compressedSize, size: entrySize, localHeaderOffset });
        p = extraEnd + commentLength;
      }
      return new ZipArchive(path, size, mtimeMs, entries);
    } finally {
      await fh.close();
    }
  }

  /** The whole entry (inflated when deflated). */
  read(entry: ZipEntry): Uint8Array {
    return this.readRange(entry, 0, entry.size);
  }

  /** `length` bytes of the entry's content from `start`: one positioned read for stored entries. */
  readRange(entry: ZipEntry, start: number, length: number): Uint8Array {
    if (start < 0 || length < 0 || start + length > entry.size) {
      throw new RankscopeError('CORRUPT', `${basename(this.path)}: '${entry.name}' is shorter than a tensor that uses it (${entry.size} bytes).`);
    }
    const fd = this.openChecked();
    try {
      const dataOffset = this.dataOffset(fd, entry);
      if (entry.method === 0) return readExactly(fd, dataOffset + start, length, this.path);
      if (entry.method !== 8) {
        throw new RankscopeError('UNSUPPORTED', `${basename(this.path)}: '${entry.name}' uses zip compression method ${entry.method}.`,
          'Save the checkpoint again with torch.save (it stores entries uncompressed).');
      }
      const inflated = inflateRawSync(readExactly(fd, dataOffset, entry.compressedSize, this.path));
      return new Uint8Array(inflated.buffer, inflated.byteOffset + start, length);
    } finally {
      closeSync(fd);
    }
  }

  /** Opens the file for one read, refusing a file that changed since open (its offsets would be stale). */
  private openChecked(): number {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (e) {
      throw new RankscopeError('NOT_FOUND', `Cannot read ${this.path}: ${(e as Error).message}`);
    }
    const s = fstatSync(fd);
    if (s.size !== this.fileSize || s.mtimeMs !== this.mtimeMs) {
      closeSync(fd);
      throw new RankscopeError('CORRUPT', `${basename(this.path)} changed on disk since it was opened.`, 'Open the model again.');
    }
    return fd;
  }

  private dataOffset(fd: number, entry: ZipEntry): number {
    let offset = this.dataOffsets.get(entry.name);
    if (offset === undefined) {
      const head = Buffer.from(readExactly(fd, entry.localHeaderOffset, 30, this.path));
      if (head.readUInt32LE(0) !== LOCAL) throw new RankscopeError('CORRUPT', `${basename(this.path)}: bad local header for '${entry.name}'.`);
      offset = entry.localHeaderOffset + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
      this.dataOffsets.set(entry.name, offset);
    }
    return offset;
  }
}

function readExactly(fd: number, position: number, length: number, path: string): Uint8Array {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new RankscopeError('CORRUPT', `${basename(path)} is truncated (read past the end at byte ${position + done}).`);
    done += n;
  }
  return buf;
}
