// Open any supported model file: sniff the format from the first bytes, dispatch to its reader.
// Only ONNX today; safetensors / PyTorch readers plug in here.
import { open as openFile } from 'node:fs/promises';
import { RankscopeError } from '../errors';
import { openOnnx } from '../formats/onnx';
import type { Model } from './types';

export async function openModel(path: string, options: { signal?: AbortSignal } = {}): Promise<Model> {
  const head = await readHead(path);
  if (head.length > 1 && head[0] === 0x50 && head[1] === 0x4b) {
    throw new RankscopeError('UNSUPPORTED', `${path} is a zip archive (a PyTorch checkpoint?), not ONNX.`,
      'Export the model to ONNX first (torch.onnx.export).');
  }
  // safetensors: 8-byte little-endian header length, then the JSON header.
  if (head.length > 8 && head[8] === 0x7b && head[6] === 0 && head[7] === 0) {
    throw new RankscopeError('UNSUPPORTED', `${path} is a safetensors file; Rankscope reads ONNX models today.`,
      'Export the model to ONNX first (torch.onnx.export).');
  }
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
