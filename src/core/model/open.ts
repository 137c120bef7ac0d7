// Open any supported model file: sniff the format from the first bytes, dispatch to its reader.
// Only ONNX today; safetensors / PyTorch readers plug in here.
import { open as openFile } from 'node:fs/promises';
import { RankscopeError } from '../errors';
import { openOnnx, sniffOnnx } from '../formats/onnx';
import type { Model } from './types';

export async function openModel(path: string, options: { signal?: AbortSignal } = {}): Promise<Model> {
  const head = await readHead(path);
  if (head.length > 1 && head[0] === 0x50 && head[1] === 0x4b) {
    throw new RankscopeError('UNSUPPORTED', `${path} is a zip archive (a PyTorch checkpoint?), not ONNX.`,
      'Export the model to ONNX first (torch.onnx.export).');
  }
  if (sniffOnnx(head) || head.length === 0) return openOnnx(path, options);
  return openOnnx(path, options); // openOnnx names the problem precisely
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
