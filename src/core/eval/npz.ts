// NumPy .npz archives (numpy.savez / savez_compressed): a zip of .npy members. Only the
// central directory is read up front; each member is an NpyArray over a window of the file
// (stored) or over a forward-inflating stream (deflated), so members are never loaded whole.
import { basename } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { RankscopeError } from '../errors';
import { FileRangeSource, InflateSource, MemberChecksum, openFile } from './byteSource';
import { npyFromSource, readNpy, type NpyArray } from './npy';

interface Member {
  key: string;
  method: number;
  /** CRC-32 of the uncompressed member, from the central directory. */
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

/** A set of named arrays: an .npz archive, or a lone .npy file (one key: its file stem). */
export interface ArrayFile {
  readonly path: string;
  readonly keys: string[];
  array(key: string): Promise<NpyArray>;
  close(): Promise<void>;
}

export class Npz implements ArrayFile {
  readonly keys: string[];

  private constructor(readonly path: string, private readonly handle: FileHandle, private readonly members: Map<string, Member>) {
    this.keys = [...members.keys()];
  }

  static async open(path: string): Promise<Npz> {
    const handle = await openFile(path);
    try {
      return new Npz(path, handle, await readCentralDirectory(handle, path));
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** The member `key` (without `.npy`); NOT_FOUND lists the keys there are. */
  async array(key: string): Promise<NpyArray> {
    const m = this.members.get(key);
    const label = `${this.path}:${key}`;
    if (!m) {
      throw new RankscopeError('NOT_FOUND', `${this.path}: no array '${key}'.`, `Arrays in this file: ${this.keys.join(', ') || '(none)'}.`);
    }
    const local = await readExactly(this.handle, m.localHeaderOffset, 30, this.path);
    const dv = new DataView(local.buffer);
    if (dv.getUint32(0, true) !== 0x04034b50) throw new RankscopeError('CORRUPT', `${label}: bad local zip header.`);
    const dataStart = m.localHeaderOffset + 30 + dv.getUint16(26, true) + dv.getUint16(28, true);
    const checksum = new MemberChecksum(m.crc, m.size, label);
    const source = m.method === 0
      ? FileRangeSource.window(this.handle, dataStart, m.size, label, checksum)
      : new InflateSource(this.path, dataStart, m.compressedSize, m.size, label, checksum);
    return npyFromSource(source, label);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

export function openNpz(path: string): Promise<Npz> {
  return Npz.open(path);
}

/** Opens `.npz` or `.npy` by content, not extension. */
export async function openArrayFile(path: string): Promise<ArrayFile> {
  const handle = await openFile(path);
  const magic = new Uint8Array(6);
  await handle.read(magic, 0, 6, 0);
  await handle.close();
  if (magic[0] === 0x50 && magic[1] === 0x4b) return Npz.open(path);
  if (magic[0] === 0x93 && magic[1] === 0x4e) {
    const key = basename(path).replace(/\.npy$/i, '');
    let opened: NpyArray[] = [];
    return {
      path,
      keys: [key],
      async array(k: string) {
        if (k !== key) throw new RankscopeError('NOT_FOUND', `${path}: a single .npy array; the only key is '${key}', not '${k}'.`);
        const a = await readNpy(path);
        opened.push(a);
        return a;
      },
      async close() {
        await Promise.all(opened.map((a) => a.close()));
        opened = [];
      },
    };
  }
  throw new RankscopeError('CORRUPT', `${path}: neither a .npz (zip) nor a .npy file.`, 'Save the data with numpy.savez / numpy.save.');
}

async function readExactly(handle: FileHandle, position: number, length: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const { bytesRead } = await handle.read(out, 0, length, position);
  if (bytesRead !== length) throw new RankscopeError('CORRUPT', `${path}: zip structure points past the end of the file.`, 'The archive is truncated; write it again.');
  return out;
}

async function readCentralDirectory(handle: FileHandle, path: string): Promise<Map<string, Member>> {
  const { size } = await handle.stat();
  // The end record sits in the last 22 bytes + up to 64 KiB of comment.
  const tailLength = Math.min(size, 22 + 0xffff);
  const tail = await readExactly(handle, size - tailLength, tailLength, path);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new RankscopeError('CORRUPT', `${path}: not a zip/.npz archive (no end-of-central-directory record).`, 'The file may be truncated or not an .npz.');
  let entries = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  // Zip64: numpy writes it for big archives; the locator precedes the end record.
  if ((entries === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) && eocd >= 20 && tv.getUint32(eocd - 20, true) === 0x07064b50) {
    const eocd64Offset = Number(tv.getBigUint64(eocd - 20 + 8, true));
    const e64 = new DataView((await readExactly(handle, eocd64Offset, 56, path)).buffer);
    if (e64.getUint32(0, true) !== 0x06064b50) throw new RankscopeError('CORRUPT', `${path}: bad zip64 end record.`);
    entries = Number(e64.getBigUint64(32, true));
    cdSize = Number(e64.getBigUint64(40, true));
    cdOffset = Number(e64.getBigUint64(48, true));
  }
  const cd = await readExactly(handle, cdOffset, cdSize, path);
  const dv = new DataView(cd.buffer);
  const members = new Map<string, Member>();
  let p = 0;
  for (let n = 0; n < entries; n++) {
    if (p + 46 > cd.length || dv.getUint32(p, true) !== 0x02014b50) throw new RankscopeError('CORRUPT', `${path}: damaged zip central directory.`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let uncompressedSize = dv.getUint32(p + 24, true);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const name = new TextDecoder().decode(cd.subarray(p + 46, p + 46 + nameLength));
    // Zip64 extra field (id 1): 8-byte values for exactly the fields that read 0xFFFFFFFF.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        if (uncompressedSize === 0xffffffff) { uncompressedSize = Number(dv.getBigUint64(q, true)); q += 8; }
        if (compressedSize === 0xffffffff) { compressedSize = Number(dv.getBigUint64(q, true)); q += 8; }
        if (localHeaderOffset === 0xffffffff) { localHeaderOffset = Number(dv.getBigUint64(q, true)); q += 8; }
      }
      e += 4 + len;
    }
    p = extraEnd + commentLength;
    if (name.endsWith('/')) continue;
    const key = name.replace(/\.npy$/, '');
    if (flags & 1) throw new RankscopeError('UNSUPPORTED', `${path}:${key}: encrypted zip members are not supported.`);
    if (method !== 0 && method !== 8) {
      throw new RankscopeError('UNSUPPORTED', `${path}:${key}: zip compression method ${method} is not supported (stored and deflate are).`, 'Write it with numpy.savez or numpy.savez_compressed.');
    }
    members.set(key, { key, method, crc, compressedSize, size: uncompressedSize, localHeaderOffset });
  }
  return members;
}
