// float16/bfloat16 conversions against numpy and PyTorch, exhaustively for the 16-bit side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from '../../../src/core/model/float16';
import { widenToFloat32 } from '../../../src/core/model/tensor';
import { RankscopeError } from '../../../src/core/errors';
import { runPython } from '../../helpers/python';

const all16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

test('every float16 and bfloat16 bit pattern widens exactly like numpy / PyTorch', () => {
  const [half, bf] = runPython(`import numpy as np, torch
b=np.arange(65536,dtype=np.uint16)
print(b.view(np.float16).astype(np.float32).tobytes().hex())
print(torch.from_numpy(b.view(np.int16).copy()).view(torch.bfloat16).float().numpy().tobytes().hex())`).trim().split('\n');
  const want = (hex: string) => new Uint32Array(new Uint8Array(Buffer.from(hex, 'hex')).buffer);
  const bits = (f: (x: number) => number) => new Uint32Array(Float32Array.from(all16, f).buffer);
  // Compare bit patterns, except NaN payloads (any NaN is fine).
  const same = (a: Uint32Array, b: Uint32Array) => a.every((x, i) => x === b[i] || (Number.isNaN(new Float32Array(a.buffer)[i]) && Number.isNaN(new Float32Array(b.buffer)[i])));
  assert.ok(same(bits(float16ToFloat32), want(half)), 'float16');
  assert.ok(same(bits(bfloat16ToFloat32), want(bf)), 'bfloat16');
  const widened = widenToFloat32(new Uint8Array(all16.buffer), 'float16', 65536);
  assert.ok(same(new Uint32Array(widened.buffer), want(half)), 'widenToFloat32 float16 table');
});

test('float32 -> float16/bfloat16 rounds to nearest even like numpy / PyTorch', () => {
  // Random float32s across the whole range plus every float16 midpoint and edge.
  let seed = 7;
  const values = new Float32Array(200_000);
  const u = new Uint32Array(values.buffer);
  for (let i = 0; i < u.length; i++) u[i] = seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  // Exact midpoints between neighbouring float16 values (ties: round to even), both signs.
  for (let i = 0; i < 0x7c00; i++) {
    values[2 * i] = (float16ToFloat32(i) + float16ToFloat32(i + 1)) / 2;
    values[2 * i + 1] = -values[2 * i];
  }
  const out = runPython(`import numpy as np, torch, sys
v=np.frombuffer(sys.stdin.buffer.read(),dtype=np.float32)
print(v.astype(np.float16).view(np.uint16).tobytes().hex())
print(torch.from_numpy(v.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).tobytes().hex())`, [], new Uint8Array(values.buffer)).trim().split('\n');
  const want = (hex: string) => new Uint16Array(new Uint8Array(Buffer.from(hex, 'hex')).buffer);
  const isNan = (i: number) => Number.isNaN(values[i]);
  const h = want(out[0]);
  const b = want(out[1]);
  for (let i = 0; i < values.length; i++) {
    if (isNan(i)) {
      assert.ok(Number.isNaN(float16ToFloat32(float32ToFloat16(values[i]))) && Number.isNaN(bfloat16ToFloat32(float32ToBfloat16(values[i]))));
      continue;
    }
    assert.equal(float32ToFloat16(values[i]), h[i], `float16 of ${values[i]}`);
    assert.equal(float32ToBfloat16(values[i]), b[i], `bfloat16 of ${values[i]}`);
  }
});

test('float32 and float64 tensors widen the same from any byte offset (raw data inside a protobuf is unaligned)', () => {
  const values = Float64Array.from({ length: 37 }, (_, i) => (i - 18) * 0.37 + 1e-3 * i * i);
  for (const [dtype, width] of [['float32', 4], ['float64', 8]] as const) {
    const packed = dtype === 'float32' ? new Uint8Array(Float32Array.from(values).buffer) : new Uint8Array(values.buffer.slice(0));
    const expected = Float32Array.from(values);
    for (let offset = 0; offset < width; offset++) {
      const file = new Uint8Array(packed.length + 8);
      file.set(packed, offset);
      const widened = widenToFloat32(file.subarray(offset, offset + packed.length), dtype, values.length);
      assert.deepEqual(widened, expected, `${dtype} at byte offset ${offset}`);
    }
  }
});

test('a tensor shorter than its shape says is a CORRUPT error, not zeros', () => {
  for (const [dtype, width] of [['float32', 4], ['float64', 8], ['float16', 2]] as const) {
    const file = new Uint8Array(64);
    assert.throws(() => widenToFloat32(file.subarray(1, 1 + 10 * width - 1), dtype, 10, 'w'), (e: unknown) =>
      e instanceof RankscopeError && e.code === 'CORRUPT' && /'w'/.test(e.message), dtype);
  }
});
