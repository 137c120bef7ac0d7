// Open any supported model file: each format's own `sniff` looks at the first bytes, the first
// format that claims the file opens it. Adding a format = one entry in FORMATS.
import { open as openFile, stat } from 'node:fs/promises';
import { RankscopeError } from '../errors';
import type { Model } from '../model/types';
import { type ModelFormat, SNIFF_BYTES } from './modelFormat';
import { OnnxModel, onnxFormat } from './onnx';
import { openPytorch, sniffPytorch } from './pytorch';
import { openSafetensors, sniffSafetensors } from './safetensors';

export type { ModelFormat } from './modelFormat';

const pytorchFormat: ModelFormat = {
  id: 'pytorch', description: 'a PyTorch checkpoint', extensions: ['.pt', '.pth', '.bin'],
  sniff: (head) => sniffPytorch(head), open: openPytorch,
};

const safetensorsFormat: ModelFormat = {
  id: 'safetensors', description: 'a safetensors file', extensions: ['.safetensors'],
  sniff: (head) => sniffSafetensors(head), open: openSafetensors,
};

/**
 * Sniffed in this order, so the precise signatures come before ONNX's (a protobuf's first byte
 * is a field tag, which many files happen to start with).
 */
export const FORMATS: readonly ModelFormat[] = [pytorchFormat, safetensorsFormat, onnxFormat];

/** Explains a file that no format claims (by its name's ending; else as ONNX, the main format). */
const FALLBACK = onnxFormat;

/** The format of the file at `path`, from its first bytes. Errors name the path. */
export async function detectFormat(path: string): Promise<ModelFormat> {
  const head = await readHead(path);
  const lower = path.toLowerCase();
  return FORMATS.find((f) => f.sniff(head, path))
    ?? FORMATS.find((f) => f.extensions.some((e) => lower.endsWith(e)))
    ?? FALLBACK;
}

export async function openModel(path: string, options: { signal?: AbortSignal } = {}): Promise<Model> {
  return (await detectFormat(path)).open(path, options);
}

/**
 * For work on the ONNX graph itself (compress, sweep, fine-tune): another format is refused
 * from its first bytes, before it is read.
 */
export async function openOnnxModel(path: string, options: { signal?: AbortSignal } = {}): Promise<OnnxModel> {
  const format = await detectFormat(path);
  const model = format === onnxFormat ? await format.open(path, options) : undefined;
  if (!(model instanceof OnnxModel)) {
    throw new RankscopeError('UNSUPPORTED', `${path} is ${format.description}, not ONNX; this works on ONNX models only.`,
      'Export the model to ONNX first (torch.onnx.export) and give the .onnx file.');
  }
  return model;
}

async function readHead(path: string): Promise<Uint8Array> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new RankscopeError('NOT_FOUND', `Model file not found: ${path}`);
  }
  if (info.isDirectory()) throw new RankscopeError('BAD_ARGUMENT', `${path} is a folder, not a model file.`, 'Give the model file inside it.');
  // Opening a FIFO or a device would block or read without end.
  if (!info.isFile()) throw new RankscopeError('BAD_ARGUMENT', `${path} is not a regular file.`, 'Give a model file.');
  const fh = await openFile(path, 'r').catch((e: Error) => {
    throw new RankscopeError('NOT_FOUND', `Cannot open ${path}: ${e.message}`);
  });
  try {
    const buf = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } catch (e) {
    throw new RankscopeError('BAD_ARGUMENT', `Cannot read ${path}: ${(e as Error).message}`);
  } finally {
    await fh.close();
  }
}
