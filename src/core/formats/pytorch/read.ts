// PyTorch checkpoints (.pt/.pth/.bin) as torch.save writes them since 1.6: a zip holding
// `<archive>/data.pkl` (the pickled object, tensors as references to storages) and
// `<archive>/data/<key>` (each storage's raw bytes). Open reads the zip directory and the
// pickle only; tensor bytes are read by offset when a tensor is used.
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../../errors';
import { StateDictModel, elementBytes, type StateDictTensor } from '../stateDict';
import { PickleRefused, unpickle } from './pickle';
import { TensorRef, resolveTorchGlobal, torchPersistentLoad } from './torchGlobals';
import { ZipArchive } from './zip';

/** Pickle header of the pre-1.6 format: PROTO 2, LONG1 of the magic number 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** A zip archive (every torch.save since 1.6), or the legacy pickle format (refused clearly on open). */
export function sniffPytorch(head: Uint8Array): boolean {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return true;
  return head.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => head[i] === b);
}

/** Keys that hold the model's state dict inside a training checkpoint, in the order tried. */
const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'network', 'weights', 'params'];
/** Top-level entries of a checkpoint that are not the model's weights. */
const NOT_WEIGHTS = /^(optim|optimizer|optimizers|scheduler|lr_scheduler|scaler|grad_scaler|amp)(_state(_dict)?)?$/i;

const REFUSED_HINT = 'If you trust the file, load it in Python and save the weights alone: torch.save(model.state_dict(), "weights.pt").';

export async function openPytorch(path: string, options: { signal?: AbortSignal } = {}): Promise<StateDictModel> {
  const abs = resolve(path);
  const name = basename(path);
  try {
    const s = await stat(abs);
    if (s.isDirectory()) throw new RankscopeError('BAD_ARGUMENT', `${path} is a folder, not a checkpoint.`);
  } catch (e) {
    if (e instanceof RankscopeError) throw e;
    throw new RankscopeError('NOT_FOUND', `Model file not found: ${path}`);
  }
  const zip = await ZipArchive.open(abs).catch(async (e) => {
    if (e instanceof RankscopeError && e.code === 'CORRUPT' && (await isLegacy(abs))) {
      throw new RankscopeError('UNSUPPORTED', `${name} is in the legacy torch.save format (before PyTorch 1.6).`,
        'Load it with torch.load and save it again with a current PyTorch (torch.save writes the zip format).');
    }
    throw e;
  });
  throwIfCancelled(options.signal);
  const pickles = [...zip.entries.keys()].filter((n) => /(^|\/)data\.pkl$/.test(n)).sort((a, b) => a.length - b.length);
  if (!pickles.length) {
    throw new RankscopeError('NOT_ONNX', `${name} is a zip archive but not a PyTorch checkpoint (no data.pkl inside).`);
  }
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  if ([...zip.entries.keys()].some((n) => n.startsWith(`${prefix}code/`))) {
    throw new RankscopeError('UNSUPPORTED', `${name} is a TorchScript archive (torch.jit.save), not a state dict.`,
      'Save the weights with torch.save(model.state_dict(), "weights.pt") and open that.');
  }
  const byteorder = zip.entries.get(`${prefix}byteorder`);
  if (byteorder && new TextDecoder().decode(zip.read(byteorder)).trim() === 'big') {
    throw new RankscopeError('UNSUPPORTED', `${name} was saved on a big-endian machine; Rankscope reads little-endian tensors.`);
  }

  let root: unknown;
  try {
    root = unpickle(zip.read(zip.entries.get(pickles[0])!), { resolveGlobal: resolveTorchGlobal, persistentLoad: torchPersistentLoad });
  } catch (e) {
    if (e instanceof PickleRefused) {
      throw new RankscopeError('UNSUPPORTED', `Refused to load ${name}: ${e.message} Rankscope never runs code from a checkpoint (like torch.load(weights_only=True)).`, REFUSED_HINT);
    }
    throw e;
  }
  const { where, entries } = findStateDict(root, name);
  const tensors: StateDictTensor[] = entries.map(([key, ref]) => {
    const entry = zip.entries.get(`${prefix}data/${ref.storage.key}`);
    if (!entry) throw new RankscopeError('CORRUPT', `${name}: tensor '${key}' refers to storage ${ref.storage.key}, which is not in the archive.`);
    return {
      key, dtype: ref.dtype, shape: ref.shape,
      alias: `${ref.storage.key}@${ref.offset}:${ref.shape.join('x')}:${ref.stride.join('x')}`,
      load: () => tensorBytes(zip, entry, ref),
    };
  });
  return new StateDictModel({
    path: abs,
    fileSize: zip.fileSize,
    format: 'pytorch',
    producer: { name: 'PyTorch', version: '' },
    metadata: { 'pytorch.archive': prefix.replace(/\/$/, ''), ...(where && { 'pytorch.stateDict': where }) },
    tensors,
  });
}

async function isLegacy(path: string): Promise<boolean> {
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(LEGACY_MAGIC.length);
    await fh.read(head, 0, head.length, 0);
    return LEGACY_MAGIC.every((b, i) => head[i] === b);
  } finally {
    await fh.close();
  }
}

/**
 * The state dict inside what torch.save wrote: the object itself when it holds tensors, else
 * the first wrapper key (`state_dict`, `model`, …) that does, recursively; failing those, every
 * tensor in nested dicts (keys joined by '.'), optimizer and scheduler state left out.
 */
export function findStateDict(root: unknown, name: string): { where: string; entries: [string, TensorRef][] } {
  let node = root;
  const path: string[] = [];
  for (;;) {
    if (node instanceof TensorRef) return { where: path.join('.'), entries: [[path.at(-1) ?? 'tensor', node]] };
    if (!(node instanceof Map)) {
      throw new RankscopeError('UNSUPPORTED', `${name} holds ${Array.isArray(node) ? 'a list' : typeof node === 'object' ? 'an object' : `a ${typeof node}`}${path.length ? ` at '${path.join('.')}'` : ''}, not a state dict.`,
        'Save the weights with torch.save(model.state_dict(), "weights.pt").');
    }
    if ([...node.values()].some((v) => v instanceof TensorRef)) break;
    const key = WRAPPER_KEYS.find((k) => node instanceof Map && hasTensors(node.get(k)));
    if (!key) break;
    path.push(key);
    node = node.get(key);
  }
  const entries: [string, TensorRef][] = [];
  const walk = (d: Map<unknown, unknown>, prefix: string, top: boolean) => {
    for (const [k, v] of d) {
      const key = `${prefix}${String(k)}`;
      if (v instanceof TensorRef) entries.push([key, v]);
      else if (v instanceof Map && !(top && NOT_WEIGHTS.test(String(k)))) walk(v, `${key}.`, false);
    }
  };
  walk(node, '', path.length === 0);
  if (!entries.length) throw new RankscopeError('UNSUPPORTED', `${name} holds no tensors${path.length ? ` under '${path.join('.')}'` : ''}.`, 'Save a state dict: torch.save(model.state_dict(), "weights.pt").');
  return { where: path.join('.'), entries };
}

function hasTensors(v: unknown, depth = 0): boolean {
  if (v instanceof TensorRef) return true;
  if (!(v instanceof Map) || depth > 8) return false;
  for (const x of v.values()) if (hasTensors(x, depth + 1)) return true;
  return false;
}

/** The tensor's bytes in row-major order: one read when contiguous, else its span gathered by strides. */
function tensorBytes(zip: ZipArchive, entry: Parameters<ZipArchive['readRange']>[0], ref: TensorRef): Uint8Array {
  const el = elementBytes(ref.dtype);
  const size = ref.shape.reduce((a, b) => a * b, 1);
  if (size === 0) return new Uint8Array(0);
  let expected = 1;
  let contiguous = true;
  for (let d = ref.shape.length - 1; d >= 0; d--) {
    if (ref.shape[d] !== 1 && ref.stride[d] !== expected) contiguous = false;
    expected *= ref.shape[d];
  }
  if (contiguous) return zip.readRange(entry, ref.offset * el, size * el);
  const last = ref.shape.reduce((a, n, d) => a + (n - 1) * ref.stride[d], 0);
  const span = zip.readRange(entry, ref.offset * el, (last + 1) * el);
  const out = new Uint8Array(size * el);
  const index = new Array(ref.shape.length).fill(0);
  for (let i = 0; i < size; i++) {
    let src = 0;
    for (let d = 0; d < index.length; d++) src += index[d] * ref.stride[d];
    out.set(span.subarray(src * el, (src + 1) * el), i * el);
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < ref.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}
