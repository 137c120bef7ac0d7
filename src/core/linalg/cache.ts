// On-disk cache of singular values, keyed by a hash of the tensor bytes and the matrix view, so
// reopening a model (or opening its compressed copy) recomputes only layers whose weights changed.
// One small JSON file per entry with a checksum: an entry that fails to parse or to check is
// deleted and recomputed, never trusted. Bounded: least recently used entries go first.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ensureOutputFolder, writeFileAtomicSync } from '../fs/atomicWrite';

/** Bump when the algorithm changes what it returns, so old entries stop matching. */
const CACHE_VERSION = 'sv-1';
const SUFFIX = '.sv.json';
export const DEFAULT_CACHE_MAX_BYTES = 256 * 1024 * 1024;

/** Where the CLI caches spectra: $RANKSCOPE_CACHE_DIR, else the XDG cache folder. */
export function defaultSpectrumCacheDir(): string {
  return process.env.RANKSCOPE_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rankscope', 'spectra');
}

export interface CachedSpectrum {
  singularValues: Float64Array;
  groups?: Float64Array[];
}

interface Entry {
  version: string;
  key: string;
  singularValues: number[];
  groups?: number[][];
  checksum: string;
}

export class SpectrumCache {
  constructor(
    readonly dir: string,
    readonly maxBytes = DEFAULT_CACHE_MAX_BYTES,
  ) {
    ensureOutputFolder(dir); // a file in the way is a clear error, not a crash
  }

  /** Key for a tensor's content hash plus how the matrix is viewed (layout, shape, groups). */
  static key(tensorHash: string, view: string): string {
    return createHash('sha256').update(`${CACHE_VERSION}\0${tensorHash}\0${view}`).digest('hex');
  }

  get(key: string): CachedSpectrum | undefined {
    const file = this.file(key);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined; // not cached
    }
    try {
      const entry = JSON.parse(text) as Entry;
      if (entry.version !== CACHE_VERSION || entry.key !== key || !Array.isArray(entry.singularValues)
        || entry.checksum !== checksum(key, entry.singularValues, entry.groups)) {
        throw new Error('bad entry');
      }
      const now = new Date();
      utimesSync(file, now, now); // recently used: evicted last
      return {
        singularValues: Float64Array.from(entry.singularValues),
        groups: entry.groups?.map((g) => Float64Array.from(g)),
      };
    } catch {
      this.remove(file); // corrupt: recompute rather than trust
      return undefined;
    }
  }

  put(key: string, value: CachedSpectrum): void {
    const singularValues = Array.from(value.singularValues);
    const groups = value.groups?.map((g) => Array.from(g));
    const entry: Entry = { version: CACHE_VERSION, key, singularValues, groups, checksum: checksum(key, singularValues, groups) };
    const file = this.file(key);
    writeFileAtomicSync(file, JSON.stringify(entry), { durable: false });
    this.enforceBound();
  }

  /** Total bytes of the cache's entries. */
  size(): number {
    return this.entries().reduce((sum, e) => sum + e.size, 0);
  }

  private enforceBound(): void {
    const entries = this.entries().sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      this.remove(e.path);
      total -= e.size;
    }
  }

  private entries(): { path: string; size: number; mtimeMs: number }[] {
    const out: { path: string; size: number; mtimeMs: number }[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(SUFFIX)) continue;
      try {
        const st = statSync(join(this.dir, name));
        out.push({ path: join(this.dir, name), size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // removed meanwhile by another process
      }
    }
    return out;
  }

  private file(key: string): string {
    return join(this.dir, key + SUFFIX);
  }

  private remove(file: string): void {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }
}

function checksum(key: string, singularValues: number[], groups?: number[][]): string {
  return createHash('sha256').update(JSON.stringify([key, singularValues, groups ?? null])).digest('hex');
}
