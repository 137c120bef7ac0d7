// Crafted faults for the malformed-input corpus: each file breaks one rule that a reader must check
// (structure, sizes, dtypes, references, labels), written by Python's onnx/numpy so that the faults are
// exactly the ones named, on otherwise well-formed files.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';

/** What a crafted file must give: a clean error, a correct result, or either (the file is odd, not wrong). */
export type Expect = 'error' | 'success' | 'either';
export interface Crafted { path: string; expect: Expect }

function listed(dir: string, ext: string, expected: Record<string, Expect>): Crafted[] {
  return Object.entries(expected).map(([name, expect]) => {
    const path = join(dir, name + ext);
    if (!existsSync(path)) throw new Error(`crafted file ${name}${ext} was not written`);
    return { path, expect };
  });
}

const MODEL_FAULTS: Record<string, Expect> = {
  cycle: 'error', dangling: 'error', duplicate_init: 'error', negative_dim: 'error', raw_data_short: 'error',
  raw_data_long: 'error', huge_no_data: 'error', float_data_count: 'error', unknown_op: 'either', string_weight: 'either',
  ext_missing: 'error', ext_past_end: 'error', ext_parent: 'error', ext_absolute: 'error', ext_symlink_out: 'error',
  empty_graph: 'error', no_opset: 'error',
};

const DATA_FAULTS: Record<string, Expect> = {
  labels_out_of_range: 'error', labels_negative: 'error', labels_nan: 'error', labels_fractional: 'error',
  onehot_wrong_width: 'error', labels_short: 'error', labels_2d_wrong: 'error', x_wrong_width: 'error', x_3d: 'error',
  x_empty: 'error', x_int: 'either', x_nan: 'either', x_missing: 'error', x_object: 'error', bad_crc: 'error',
  huge_shape: 'error', x_fortran: 'success', x_bigendian: 'success', compressed_ok: 'success',
};

/** Structurally invalid or hostile ONNX models (issue 12 item 7 and friends); returns their paths. */
export function craftBrokenModels(dir: string): Crafted[] {
  runPython(String.raw`
import os, sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(0)
W = rng.standard_normal((16, 8)).astype(np.float32)
x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 16])
y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 8])
def save(name, nodes, inits, inputs=(x,), outputs=(y,)):
    g = helper.make_graph(nodes, name, list(inputs), list(outputs), inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]); m.ir_version = 8
    open(os.path.join(d, name + '.onnx'), 'wb').write(m.SerializeToString())
mm = lambda a, b, o: helper.make_node('MatMul', [a, b], [o])
def tensor(name, dtype, dims, raw=None, floats=None):
    t = TensorProto(); t.name = name; t.data_type = dtype; t.dims.extend(dims)  # no size check: that is the point
    if raw is not None: t.raw_data = raw
    if floats is not None: t.float_data.extend(floats)
    return t
w = numpy_helper.from_array(W, 'W')
# A cycle: t1 needs t2 and t2 needs t1.
save('cycle', [helper.make_node('Add', ['x', 't2'], ['t1']), helper.make_node('Relu', ['t1'], ['t2']), mm('t1', 'W', 'y')], [w])
# A node input that nothing produces.
save('dangling', [mm('ghost', 'W', 'y')], [w])
# Two initializers with one name (different shapes).
save('duplicate_init', [mm('x', 'W', 'y')], [w, numpy_helper.from_array(np.ones((3, 3), np.float32), 'W')])
# A negative dimension.
neg = tensor('W', TensorProto.FLOAT, [16, -8], raw=W.tobytes())
save('negative_dim', [mm('x', 'W', 'y')], [neg])
# raw_data shorter than its dims say.
short = tensor('W', TensorProto.FLOAT, [16, 8], raw=W.tobytes()[:100])
save('raw_data_short', [mm('x', 'W', 'y')], [short])
# raw_data longer than its dims say.
long_ = tensor('W', TensorProto.FLOAT, [16, 8], raw=W.tobytes() + b'\0' * 64)
save('raw_data_long', [mm('x', 'W', 'y')], [long_])
# 2^40 elements and no data at all.
huge = tensor('W', TensorProto.FLOAT, [1 << 20, 1 << 20])
save('huge_no_data', [mm('x', 'W', 'y')], [huge])
# float_data of the wrong count.
fd = tensor('W', TensorProto.FLOAT, [16, 8], floats=list(range(50)))
save('float_data_count', [mm('x', 'W', 'y')], [fd])
# An op no runtime knows.
save('unknown_op', [helper.make_node('FrobnicateV9', ['x', 'W'], ['y'], domain='ai.example')], [w])
# A weight of dtype string.
sw = helper.make_tensor('W', TensorProto.STRING, [2], [b'a', b'b'])
save('string_weight', [mm('x', 'W', 'y')], [sw])
# External data: a missing file, an offset past the end, a path outside the folder, a symlink out.
def ext(name, location, offset=0, length=None):
    t = tensor('W', TensorProto.FLOAT, [16, 8])
    t.data_location = TensorProto.EXTERNAL
    for k, v in [('location', location), ('offset', str(offset))] + ([('length', str(length))] if length is not None else []):
        e = t.external_data.add(); e.key = k; e.value = v
    save(name, [mm('x', 'W', 'y')], [t])
open(os.path.join(d, 'weights.bin'), 'wb').write(W.tobytes())
ext('ext_missing', 'no_such_file.bin')
ext('ext_past_end', 'weights.bin', offset=4096)
ext('ext_parent', '../outside.bin')
ext('ext_absolute', '/etc/passwd')
outside = os.path.join(os.path.dirname(d), 'outside-weights.bin'); open(outside, 'wb').write(W.tobytes())
link = os.path.join(d, 'linked.bin')
if not os.path.lexists(link): os.symlink(outside, link)
ext('ext_symlink_out', 'linked.bin')
# A graph with no nodes and an output nothing produces.
save('empty_graph', [], [])
# Opset import missing entirely.
g = helper.make_graph([mm('x', 'W', 'y')], 'noopset', [x], [y], [w])
m = helper.make_model(g); del m.opset_import[:]; m.ir_version = 8
open(os.path.join(d, 'no_opset.onnx'), 'wb').write(m.SerializeToString())
`, [dir]);
  return listed(dir, '.onnx', MODEL_FAULTS);
}

/** npz files with one fault each, for `eval mlp.onnx --input x=x --labels y` (10 classes, 16 features). */
export function craftBrokenNpz(dir: string): Crafted[] {
  runPython(String.raw`
import os, sys, zipfile, io, numpy as np
d = sys.argv[1]; os.makedirs(d, exist_ok=True)
rng = np.random.default_rng(1)
x = rng.standard_normal((40, 16)).astype(np.float32)
y = rng.integers(0, 10, 40)
def save(name, **arrays): np.savez(os.path.join(d, name + '.npz'), **arrays)
save('labels_out_of_range', x=x, y=np.full(40, 1000))
save('labels_negative', x=x, y=-np.ones(40, np.int64))
save('labels_nan', x=x, y=np.full(40, np.nan, np.float32))
save('labels_fractional', x=x, y=np.full(40, 2.5, np.float32))
save('onehot_wrong_width', x=x, y=np.eye(7, dtype=np.float32)[y % 7])
save('labels_short', x=x, y=y[:30])
save('labels_2d_wrong', x=x, y=np.zeros((40, 3, 2), np.float32))
save('x_wrong_width', x=x[:, :15], y=y)
save('x_3d', x=x.reshape(40, 4, 4), y=y)
save('x_empty', x=x[:0], y=y[:0])
save('x_int', x=(x * 10).astype(np.int32), y=y)
save('x_nan', x=np.full_like(x, np.nan), y=y)
save('x_missing', z=x, y=y)
save('x_object', x=np.array([{'a': 1}] * 40, dtype=object), y=y)
save('x_fortran', x=np.asfortranarray(x), y=y)
save('x_bigendian', x=x.astype('>f4'), y=y)
# A member whose CRC does not match its bytes.
buf = io.BytesIO(); np.save(buf, x); raw = bytearray(buf.getvalue()); raw[-5] ^= 0xFF
with zipfile.ZipFile(os.path.join(d, 'bad_crc.npz'), 'w') as z:
    z.writestr('x.npy', bytes(buf.getvalue())); b2 = io.BytesIO(); np.save(b2, y); z.writestr('y.npy', b2.getvalue())
data = bytearray(open(os.path.join(d, 'bad_crc.npz'), 'rb').read())
i = data.find(bytes(buf.getvalue()[:64])) + len(buf.getvalue()) - 5; data[i] ^= 0xFF
open(os.path.join(d, 'bad_crc.npz'), 'wb').write(bytes(data))
# A header that claims an enormous shape over a few bytes of data.
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 16), }"
hdr = hdr + ' ' * (118 - len(hdr)) + '\n'
with zipfile.ZipFile(os.path.join(d, 'huge_shape.npz'), 'w') as z:
    z.writestr('x.npy', b'\x93NUMPY\x01\x00' + len(hdr).to_bytes(2, 'little') + hdr.encode() + b'\0' * 64)
    b2 = io.BytesIO(); np.save(b2, y); z.writestr('y.npy', b2.getvalue())
# A deflated member.
np.savez_compressed(os.path.join(d, 'compressed_ok.npz'), x=x, y=y)
`, [dir]);
  return listed(dir, '.npz', DATA_FAULTS);
}
