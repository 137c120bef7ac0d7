// What a model format module provides to the dispatcher (formats/index.ts): a cheap `sniff` on
// the first bytes and an `open` that returns the common Model. A new format is one such object,
// added to the FORMATS list there.
import type { Model } from '../model/types';

/** Bytes a sniffer is given (fewer when the file is shorter). */
export const SNIFF_BYTES = 64;

export interface ModelFormat {
  /** Short id, as in messages: 'onnx', 'safetensors', 'pytorch'. */
  readonly id: string;
  /** What a user calls it: "an ONNX model", "a PyTorch checkpoint". */
  readonly description: string;
  /** File name endings (lower case, with the dot); the reader asked to explain a file nobody sniffs. */
  readonly extensions: readonly string[];
  /** True when `head` (the file's first SNIFF_BYTES bytes) is this format's. Must not read the file. */
  sniff(head: Uint8Array, path: string): boolean;
  open(path: string, options: { signal?: AbortSignal }): Promise<Model>;
}
