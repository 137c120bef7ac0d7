// Plain float64 work buffers reused from one call to the next on this thread. A fresh buffer
// costs a page fault (and the kernel's zeroing) per 4 KiB on first touch: a 768×768 job's Gram
// operands alone are ~9 MB, and a worker runs dozens of such jobs. Each name is one buffer,
// grown when a call needs more; its contents are whatever the last user left. Large requests get
// a fresh buffer, so a thread never holds on to hundreds of MB after a large layer.

/** The largest buffer kept for reuse (doubles): 64 MiB. */
const MAX_KEPT_DOUBLES = 8 * 1024 * 1024;

const kept = new Map<string, Float64Array>();

/**
 * `length` doubles for the work named `name`, valid until the next scratch(name) on this thread.
 * Not zeroed.
 */
export function scratch(name: string, length: number): Float64Array {
  if (length > MAX_KEPT_DOUBLES) return new Float64Array(length);
  let buffer = kept.get(name);
  if (!buffer || buffer.length < length) {
    buffer = new Float64Array(Math.min(MAX_KEPT_DOUBLES, Math.max(length, Math.ceil((buffer?.length ?? 0) * 1.5))));
    kept.set(name, buffer);
  }
  return buffer.subarray(0, length);
}
