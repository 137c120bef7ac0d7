// Peak RSS of a benchmark process, the same way in Node and in the reference Python: VmHWM from
// /proc/self/status. (ru_maxrss would carry the parent's peak over exec on Linux, so every child
// would report at least the bench's own.)
import { readFileSync } from 'node:fs';

export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Defines peak_rss() in a Python snippet (bytes). */
export const PEAK_RSS_PY = `
def peak_rss():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'): return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
`;
