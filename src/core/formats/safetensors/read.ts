// Opening a .safetensors file as a Model: the header is read on open, each tensor by offset
// when it is used (one positioned read; the format's data is contiguous and little-endian).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { RankscopeError } from '../../errors';
import { StateDictModel } from '../stateDict';
import { parseHeader } from './container';

/** 8-byte little-endian header length (small: its top bytes are zero), then the JSON object. */
export function sniffSafetensors(head: Uint8Array): boolean {
  return head.length > 8 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0;
}

export async function openSafetensors(path: string, _options: { signal?: AbortSignal } = {}): Promise<StateDictModel> {
  const abs = resolve(path);
  const name = basename(path);
  let fh;
  try {
    fh = await open(abs, 'r');
  } catch {
    throw new RankscopeError('NOT_FOUND', `Model file not found: ${path}`);
  }
  let size: number;
  let mtimeMs: number;
  let head: Uint8Array;
  try {
    ({ size, mtimeMs } = await fh.stat());
    const first = Buffer.alloc(8);
    await fh.read(first, 0, 8, 0);
    const n = Math.min(Number(first.readBigUInt64LE(0)), Math.max(0, size - 8));
    head = Buffer.alloc(8 + n);
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  const header = parseHeader(head, size, name);
  const read = (begin: number, length: number): Uint8Array => {
    const fd = openSync(abs, 'r');
    try {
      const s = fstatSync(fd);
      if (s.size !== size || s.mtimeMs !== mtimeMs) throw new RankscopeError('CORRUPT', `${name} changed on disk since it was opened.`, 'Open the model again.');
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const got = readSync(fd, buf, done, length - done, header.dataStart + begin + done);
        if (got === 0) throw new RankscopeError('CORRUPT', `${name} is truncated.`);
        done += got;
      }
      return buf;
    } finally {
      closeSync(fd);
    }
  };
  return new StateDictModel({
    path: abs,
    fileSize: size,
    format: 'safetensors',
    producer: { name: header.metadata.format === 'pt' ? 'PyTorch (safetensors)' : 'safetensors', version: '' },
    metadata: header.metadata,
    tensors: header.entries.map((e) => ({
      key: e.name, dtype: e.dtype, shape: e.shape, alias: `${e.begin}:${e.end}`,
      load: () => read(e.begin, e.end - e.begin),
    })),
  });
}
