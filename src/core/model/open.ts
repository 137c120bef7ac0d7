// Open any supported model file: sniff the format from the first bytes, dispatch to its reader.
import { open as openFile } from 'node:fs/promises';
import { RankscopeError } from '../errors';
import { openOnnx } from '../formats/onnx';
import { openPytorch, sniffPytorch } from '../formats/pytorch';
import { openSafetensors, sniffSafetensors } from '../formats/safetensors';
import type { Model } from './types';

/** State-dict formats, each asked by its sniff (one entry per format). */
const STATE_DICT_FORMATS = [
  { sniff: sniffPytorch, open: openPytorch },
  { sniff: sniffSafetensors, open: openSafetensors },
];

export async function openModel(path: string, options: { signal?: AbortSignal } = {}): Promise<Model> {
  const head = await readHead(path);
  const stateDict = STATE_DICT_FORMATS.find((f) => f.sniff(head));
  if (stateDict) return stateDict.open(path, options);
  // Everything else goes to the ONNX reader, which names the problem precisely.
  return openOnnx(path, options);
}

async function readHead(path: string): Promise<Uint8Array> {
  let fh;
  try {
    fh = await openFile(path, 'r');
  } catch {
    throw new RankscopeError('NOT_FOUND', `Model file not found: ${path}`);
  }
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await fh.read(buf, 0, 16, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw new RankscopeError('BAD_ARGUMENT', `Cannot read ${path}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}
