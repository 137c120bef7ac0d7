// ONNX in and out. Everything other modules need from this format is exported here.
export { openOnnx, openModelBytes, sniffOnnx, OnnxModel, sourceDirOf, type OpenOptions } from './read';
export { onnxFormat } from './format';
export { encodeOnnx, writeOnnxAtomic, makeTensorProto, type WriteOptions } from './write';
export {
  buildInventory, nodeId, findNode, attr, readCompressedEntries, parseCompressedEntries, COMPRESSED_METADATA_KEY, type CompressedEntry,
} from './inventory';
export { tensorBytes, externalRef, dimsOf, elementCount } from './tensorData';
export {
  graphScopes, tensorSites, tensorKeyIn, producerIn, definingScope, subgraphsOf, type GraphScope, type TensorSite,
} from './graphs';
export { validateModel } from './validate';
export { dtypeOf, dataTypeCode, elementBits, rawByteLength } from './dtypes';
export * from './gen/onnx_pb';
