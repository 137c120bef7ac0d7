// ONNX as the dispatcher (formats/index.ts) sees it.
import type { ModelFormat } from '../modelFormat';
import { openOnnx, sniffOnnx } from './read';

export const onnxFormat: ModelFormat = {
  id: 'onnx',
  description: 'an ONNX model',
  extensions: ['.onnx'],
  sniff: (head) => sniffOnnx(head),
  open: (path, options) => openOnnx(path, options),
};
