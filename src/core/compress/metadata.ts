// The `rankscope.compressed` metadata record. The agreed fields (CompressedEntry, read by the
// inventory) plus what restore and re-compression need to undo the rewrite exactly.
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { COMPRESSED_METADATA_KEY, NodeProtoSchema, readCompressedEntries, type CompressedEntry, type ModelProto, type NodeProto } from '../formats/onnx';
import type { DType, MatrixLayout, Model } from '../model/types';

export const METHOD = 'svd-balanced';
/** Layers restored to dense: `[{ layer, weight, sourceFile, from: 'original' | 'recomposed' }]`. */
export const RESTORED_METADATA_KEY = 'rankscope.restored';

export interface RankscopeEntry extends CompressedEntry {
  /** Tensor hash (Tensor.hash) of the original weight in sourceFile, checked before restoring from it. */
  sourceHash?: string;
  /** How A and B are stored (rewrite.ts). */
  layout: MatrixLayout;
  groups: number;
  /** The original weight's stored shape and dtype (restore rebuilds it). */
  tensorShape: number[];
  dtype: DType;
  /** The nodes the rewrite replaced, as ONNX JSON, each with the pair of node names replacing it,
   *  and the Transpose/Cast/Identity nodes it bypassed. */
  graph: { uses: { original: JsonValue; pair: [string, string] }[]; via: JsonValue[] };
}

export function readEntries(proto: ModelProto): RankscopeEntry[] {
  return readCompressedEntries(proto).filter((e): e is RankscopeEntry => typeof (e as RankscopeEntry).layout === 'string' && !!(e as RankscopeEntry).graph);
}

/** Entry of a factorized layer of `model`, from its summary metadata. */
export function entryOf(model: Model, layerName: string): RankscopeEntry | undefined {
  const raw = model.summary.metadata[COMPRESSED_METADATA_KEY];
  if (!raw) return undefined;
  try {
    return (JSON.parse(raw) as RankscopeEntry[]).find((e) => e.layer === layerName && e.graph);
  } catch {
    return undefined;
  }
}

export const nodeToJson = (n: NodeProto): JsonValue => toJson(NodeProtoSchema, n);
export const nodeFromJson = (j: JsonValue): NodeProto => fromJson(NodeProtoSchema, j);

/** A copy of `proto.metadataProps` with `key` set to `value` (removed when undefined), order kept. */
export function withMetadata(proto: ModelProto, key: string, value: string | undefined): ModelProto['metadataProps'] {
  const props = proto.metadataProps.filter((p) => p.key !== key || value !== undefined);
  const index = props.findIndex((p) => p.key === key);
  if (value === undefined) return props;
  const entry = { $typeName: 'onnx.StringStringEntryProto' as const, key, value };
  if (index >= 0) props[index] = entry;
  else props.push(entry);
  return props;
}
