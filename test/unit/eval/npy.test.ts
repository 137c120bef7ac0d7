// The npy/npz reader against files written by numpy itself: every element byte must match
// numpy's own C-order little-endian bytes of the same array.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';
import { readNpy, NpyArray } from '../../../src/core/eval/npy';
import { openNpz, openArrayFile } from '../../../src/core/eval/npz';
import { loadDataset } from '../../../src/core/eval/dataset';
import { RankscopeError } from '../../../src/core/errors';

let dir = '';

// Each case: a name, a numpy expression; written as .npy plus C-order little-endian reference bytes.
const WRITE = String.raw`
import numpy as np, sys, os
d = sys.argv[1]
rng = np.random.default_rng(7)
cases = {
  'f32': rng.standard_normal((5, 3, 4)).astype('<f4'),
  'f64_be': rng.standard_normal((4, 6)).astype('>f8'),
  'f16': rng.standard_normal((7, 3)).astype('<f2'),
  'f16_be': rng.standard_normal((7, 3)).astype('>f2'),
  'f32_fortran': np.asfortranarray(rng.standard_normal((6, 5, 3)).astype('<f4')),
  'f32_fortran_be': np.asfortranarray(rng.standard_normal((4, 3, 2)).astype('>f4')),
  'i8': rng.integers(-128, 127, (9,), dtype=np.int8),
  'u8': rng.integers(0, 255, (3, 3), dtype=np.uint8),
  'i16_be': rng.integers(-3000, 3000, (4, 2)).astype('>i2'),
  'u16': rng.integers(0, 60000, (4, 2)).astype('<u2'),
  'i32': rng.integers(-2**31, 2**31 - 1, (5, 2)).astype('<i4'),
  'u32_be': rng.integers(0, 2**32 - 1, (5, 2), dtype=np.uint64).astype('>u4'),
  'i64': rng.integers(-2**62, 2**62, (6,), dtype=np.int64),
  'i64_be_fortran': np.asfortranarray(rng.integers(-2**40, 2**40, (3, 4), dtype=np.int64).astype('>i8')),
  'u64': rng.integers(0, 2**63, (4,), dtype=np.uint64),
  'bool': rng.random((4, 5)) > 0.5,
  'scalar': np.array(3.5, dtype='<f8'),
  'empty': np.zeros((0, 7), dtype='<f4'),
  'empty_mid': np.zeros((3, 0, 2), dtype='<i4'),
}
for k, a in cases.items():
    np.save(os.path.join(d, k + '.npy'), a)
    open(os.path.join(d, k + '.ref'), 'wb').write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder('<')).tobytes(order='C'))
big = rng.standard_normal((1000, 3, 50)).astype('<f4')
labels = np.eye(10, dtype='<f4')[rng.integers(0, 10, 1000)]
np.savez(os.path.join(d, 'stored.npz'), x=big, y=labels, f=cases['f32_fortran'], s=cases['scalar'], e=cases['empty'])
np.savez_compressed(os.path.join(d, 'deflated.npz'), x=big, y=labels, f=cases['f32_fortran'], s=cases['scalar'], e=cases['empty'])
open(os.path.join(d, 'big.ref'), 'wb').write(big.tobytes())
open(os.path.join(d, 'labels.ref'), 'wb').write(labels.tobytes())
np.save(os.path.join(d, 'v2.npy'), np.zeros((2, 2), dtype=[('a', '<f4'), ('b', '<i4')]))
open(os.path.join(d, 'obj.npy'), 'wb').write(open(os.path.join(d, 'f32.npy'), 'rb').read().replace(b"'<f4'", b"'|O8'"))
`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-npy-'));
  runPython(WRITE, [dir]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

test('every dtype, byte order and memory order matches numpy byte for byte', async () => {
  const names = readdirSync(dir).filter((f) => f.endsWith('.ref') && !['big.ref', 'labels.ref'].includes(f)).map((f) => f.slice(0, -4));
  assert.ok(names.length >= 19);
  for (const name of names) {
    const a = await readNpy(join(dir, `${name}.npy`));
    const ref = readFileSync(join(dir, `${name}.ref`));
    const all = await a.readAll();
    assert.ok(bytesOf(all).equals(ref), `${name}: bytes differ`);
    await a.close();
  }
});

test('dtypes, shapes and typed-array kinds are reported as numpy has them', async () => {
  const f16 = await readNpy(join(dir, 'f16_be.npy'));
  assert.equal(f16.dtype, 'float16');
  assert.deepEqual(f16.shape, [7, 3]);
  assert.ok((await f16.readAll()) instanceof Uint16Array);
  const i64 = await readNpy(join(dir, 'i64_be_fortran.npy'));
  assert.ok((await i64.readAll()) instanceof BigInt64Array);
  const s = await readNpy(join(dir, 'scalar.npy'));
  assert.deepEqual(s.shape, []);
  assert.deepEqual([...(await s.readAll()) as Float64Array], [3.5]);
  await assert.rejects(s.readRows(0, 1), (e: RankscopeError) => e.code === 'SHAPE_MISMATCH' && /0-d/.test(e.message));
  const b = await readNpy(join(dir, 'bool.npy'));
  assert.equal(b.dtype, 'bool');
  for (const x of [f16, i64, s, b]) await x.close();
});

test('row blocks of C and Fortran arrays equal the matching slice of numpy bytes', async () => {
  for (const [name, itemSize] of [['f32', 4], ['f32_fortran', 4], ['f32_fortran_be', 4], ['i64_be_fortran', 8]] as const) {
    const a = await readNpy(join(dir, `${name}.npy`));
    const ref = readFileSync(join(dir, `${name}.ref`));
    const rowBytes = a.rowSize * itemSize;
    for (const [start, count] of [[0, 1], [1, 2], [a.shape[0] - 1, 1], [2, 0]]) {
      const got = await a.readRows(start, count);
      assert.ok(bytesOf(got).equals(ref.subarray(start * rowBytes, (start + count) * rowBytes)), `${name} rows ${start}+${count}`);
    }
    await a.close();
  }
});

test('large Fortran arrays are gathered column by column with the same result', async () => {
  const saved = NpyArray.wholeReadLimit;
  NpyArray.wholeReadLimit = 16;
  try {
    const a = await readNpy(join(dir, 'f32_fortran.npy'));
    const ref = readFileSync(join(dir, 'f32_fortran.ref'));
    const got = await a.readRows(2, 3);
    assert.ok(bytesOf(got).equals(ref.subarray(2 * 15 * 4, 5 * 15 * 4)));
    await a.close();
  } finally {
    NpyArray.wholeReadLimit = saved;
  }
});

for (const kind of ['stored', 'deflated']) {
  test(`${kind} .npz: members read lazily in batches, forwards and backwards`, async () => {
    const z = await openNpz(join(dir, `${kind}.npz`));
    assert.deepEqual([...z.keys].sort(), ['e', 'f', 's', 'x', 'y']);
    const x = await z.array('x');
    assert.deepEqual(x.shape, [1000, 3, 50]);
    const ref = readFileSync(join(dir, 'big.ref'));
    const rowBytes = 150 * 4;
    const parts: Buffer[] = [];
    for (let s = 0; s < 1000; s += 64) parts.push(Buffer.from(bytesOf(await x.readRows(s, Math.min(64, 1000 - s)))));
    assert.ok(Buffer.concat(parts).equals(ref));
    // Going back restarts the inflater (deflated) or is just another positioned read (stored).
    assert.ok(bytesOf(await x.readRows(10, 5)).equals(ref.subarray(10 * rowBytes, 15 * rowBytes)));
    const y = await z.array('y');
    assert.ok(bytesOf(await y.readAll()).equals(readFileSync(join(dir, 'labels.ref'))));
    assert.ok(bytesOf(await (await z.array('f')).readAll()).equals(readFileSync(join(dir, 'f32_fortran.ref'))));
    assert.deepEqual([...(await (await z.array('s')).readAll()) as Float64Array], [3.5]);
    assert.equal((await (await z.array('e')).readAll()).length, 0);
    await assert.rejects(z.array('x_test'), (e: RankscopeError) => e.code === 'NOT_FOUND' && /no array 'x_test'/.test(e.message) && /\bx\b/.test(e.hint ?? '') && /\by\b/.test(e.hint ?? ''));
    await z.close();
  });
}

test('openArrayFile sniffs .npy and .npz by content', async () => {
  const f = await openArrayFile(join(dir, 'f32.npy'));
  assert.deepEqual(f.keys, ['f32']);
  assert.deepEqual((await f.array('f32')).shape, [5, 3, 4]);
  await f.close();
  const z = await openArrayFile(join(dir, 'stored.npz'));
  assert.ok(z.keys.includes('x'));
  await z.close();
});

test('bad files get a clear error naming the file', async () => {
  const notNpy = join(dir, 'bad.npy');
  writeFileSync(notNpy, 'hello world, not numpy');
  await assert.rejects(readNpy(notNpy), (e: RankscopeError) => e.code === 'CORRUPT' && e.message.includes(notNpy));
  await assert.rejects(readNpy(join(dir, 'missing.npy')), (e: RankscopeError) => e.code === 'NOT_FOUND');
  await assert.rejects(readNpy(join(dir, 'v2.npy')), (e: RankscopeError) => e.code === 'UNSUPPORTED' && /structured/.test(e.message));
  await assert.rejects(readNpy(join(dir, 'obj.npy')), (e: RankscopeError) => e.code === 'UNSUPPORTED' && /'\|O8'/.test(e.message));
  // A truncated data section is caught when the array is opened.
  const full = readFileSync(join(dir, 'f32.npy'));
  const cut = join(dir, 'cut.npy');
  writeFileSync(cut, full.subarray(0, full.length - 8));
  await assert.rejects(readNpy(cut), (e: RankscopeError) => e.code === 'CORRUPT' && /truncated/.test(e.message));
  const zipCut = join(dir, 'cut.npz');
  writeFileSync(zipCut, readFileSync(join(dir, 'deflated.npz')).subarray(0, 2000));
  await assert.rejects(openNpz(zipCut), (e: RankscopeError) => e.code === 'CORRUPT' && e.message.includes(zipCut));
});

test('an .npz member with a bad CRC-32 is a CORRUPT error naming the member, stored or deflated, read whole or in part', async () => {
  // Copies of the archives with (a) the central directory's CRC of 'x' changed and (b), stored
  // only, one data byte of 'x' flipped (deflated data that is flipped already fails to inflate).
  runPython(String.raw`
import sys, os, struct
d = sys.argv[1]
def patch(src, dst, flip_data):
    b = bytearray(open(os.path.join(d, src), 'rb').read())
    at = 0
    while True:
        at = b.find(b'PK\x01\x02', at)
        if at < 0: break
        n = struct.unpack_from('<H', b, at + 28)[0]
        if bytes(b[at + 46:at + 46 + n]) == b'x.npy':
            if flip_data:
                local = struct.unpack_from('<I', b, at + 42)[0]
                start = local + 30 + sum(struct.unpack_from('<HH', b, local + 26))
                b[start + 5000] ^= 0x10
            else:
                struct.pack_into('<I', b, at + 16, struct.unpack_from('<I', b, at + 16)[0] ^ 0x1)
        at += 4
    open(os.path.join(d, dst), 'wb').write(b)
patch('stored.npz', 'stored_badcrc.npz', False)
patch('deflated.npz', 'deflated_badcrc.npz', False)
patch('stored.npz', 'stored_flipped.npz', True)
`, [dir]);
  const crcError = (file: string) => (e: unknown) => e instanceof RankscopeError && e.code === 'CORRUPT'
    && e.message.startsWith(`${join(dir, file)}:x: the member's data fails its CRC-32 check`) && /write the \.npz again/i.test(e.hint ?? '');
  for (const file of ['stored_badcrc.npz', 'deflated_badcrc.npz', 'stored_flipped.npz']) {
    const z = await openNpz(join(dir, file));
    // Read in batches to the end. (A deflated member whose first inflated chunk holds all of it fails as soon as it is opened.)
    await assert.rejects(async () => {
      const x = await z.array('x');
      for (let s = 0; s < 1000; s += 64) await x.readRows(s, Math.min(64, 1000 - s));
    }, crcError(file), file);
    // Read in part: verify() reads the rest and fails; once failed, the member stays failed.
    let partial: NpyArray | undefined;
    await assert.rejects(async () => {
      partial = await z.array('x');
      await partial.readRows(0, 3);
      await partial.verify();
    }, crcError(file), `${file}: verify after a partial read`);
    if (partial) await assert.rejects(partial.readRows(0, 3), crcError(file), `${file}: a read after the failure`);
    // Other members of the same archive are fine.
    const y = await z.array('y');
    assert.ok(bytesOf(await y.readAll()).equals(readFileSync(join(dir, 'labels.ref'))));
    await y.verify();
    await z.close();
  }
  // A dataset checks small members when it opens, before any model runs on them.
  await assert.rejects(loadDataset({ data: join(dir, 'stored_flipped.npz'), inputs: { x: 'x' }, labels: null }, [{ name: 'x', type: 'float32', shape: ['N', 3, 50] }]),
    crcError('stored_flipped.npz'));
  // The intact archives pass the same checks.
  for (const file of ['stored.npz', 'deflated.npz']) {
    const z = await openNpz(join(dir, file));
    const x = await z.array('x');
    await x.readRows(0, 3);
    await x.verify();
    await z.close();
  }
});
