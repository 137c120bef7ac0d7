// The `rankscope.compressed` metadata record as Rankscope's rewrite writes it: the agreed fields
// (CompressedEntry, parsed once by formats/onnx) plus what restore and re-compression need to undo
// the rewrite exactly. Entries from other writers lack those and are not Rankscope entries.
import { fromJson, toJson, type JsonValue } from '@bufbuild/protobuf';
import { COMPRESSED_METADATA_KEY, NodeProtoSchema, parseCompressedEntries, readCompressedEntries, type CompressedEntry, type ModelProto, type NodeProto } from '../formats/onnx';
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
  /** The weight's name in its graph when it differs from `weight` (a subgraph tensor whose name a sibling subgraph also uses). */
  weightLocal?: string;
  /** The nodes the rewrite replaced, as ONNX JSON, each with the pair of node names replacing it,
   *  and the Transpose/Cast/Identity nodes it bypassed. */
  graph: { uses: { original: JsonValue; pair: [string, string] }[]; via: JsonValue[] };
  /** Whitened factorization only (method 'whitened'): the calibration it used and how each group's Gram was whitened. */
  calibration?: { hash: string; data: string; samples: number; seed: number; whitening: { route: string; jitter?: number; regularized: number; n: number }[] };
}

function isRankscopeEntry(e: CompressedEntry): e is RankscopeEntry {
  return e.layout !== undefined && e.groups !== undefined && e.tensorShape !== undefined && e.dtype !== undefined && e.graph !== undefined;
}

export function readEntries(proto: ModelProto): RankscopeEntry[] {
  return readCompressedEntries(proto).filter(isRankscopeEntry);
}

/** Rankscope's entry for a factorized layer of `model`, from its summary metadata. */
export function entryOf(model: Model, layerName: string): RankscopeEntry | undefined {
  return parseCompressedEntries(model.summary.metadata[COMPRESSED_METADATA_KEY]).filter(isRankscopeEntry).find((e) => e.layer === layerName);
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
