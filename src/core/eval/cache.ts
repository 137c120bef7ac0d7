// On-disk cache of sweep points: one JSON file per key (plus an optional binary payload), written
// to a temp file and renamed, so an interrupted sweep leaves only whole entries behind. A
// re-run or a resumed sweep reads what is there and computes the rest.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfCancelled } from '../errors';
import { writeFileAtomic } from '../fs/atomicWrite';

export class PointCache {
  constructor(readonly dir: string | undefined) {}

  static key(parts: unknown): string {
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 40);
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (!this.dir) return undefined;
    try {
      return JSON.parse(await readFile(join(this.dir, `${key}.json`), 'utf8')) as T;
    } catch {
      return undefined; // missing or half-written by an older crash: recompute
    }
  }

  async getFloats(key: string): Promise<Float32Array | undefined> {
    if (!this.dir) return undefined;
    try {
      const b = await readFile(join(this.dir, `${key}.f32`));
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    } catch {
      return undefined;
    }
  }

  async put(key: string, value: unknown): Promise<void> {
    if (!this.dir) return;
    await this.atomicWrite(`${key}.json`, JSON.stringify(value));
  }

  async putFloats(key: string, data: Float32Array): Promise<void> {
    if (!this.dir) return;
    await this.atomicWrite(`${key}.f32`, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  private async atomicWrite(name: string, data: string | Uint8Array): Promise<void> {
    await writeFileAtomic(join(this.dir!, name), data, { createFolder: true, durable: false });
  }
}

/** SHA-256 of a file's bytes, streamed. */
export async function hashFileContent(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) {
    throwIfCancelled(signal);
    h.update(chunk as Buffer);
  }
  return h.digest('hex');
}
