// The format dispatcher (core/formats): each format's sniff decides, ONNX-only work refuses other
// formats up front, and paths that are not model files are refused before anything is read.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectFormat, FORMATS, openModel, openOnnxModel } from '../../../src/core/formats';
import { onnxFormat } from '../../../src/core/formats/onnx';
import { buildZoo, tempDir } from './fixtures';
import { isError } from '../../helpers/errors';

let dir: string;
let zooPath: string;
let safetensorsPath: string;
let zipPath: string;
before(() => {
  dir = tempDir('rankscope-dispatch-');
  zooPath = buildZoo(dir).path;
  const header = Buffer.from('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  safetensorsPath = join(dir, 'model.safetensors');
  writeFileSync(safetensorsPath, Buffer.concat([len, header, Buffer.alloc(4)]));
  zipPath = join(dir, 'model.pt');
  writeFileSync(zipPath, Buffer.from('PK\u0003\u0004rest of a zip'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('each file goes to the format whose own sniff claims it', async () => {
  assert.equal(await detectFormat(zooPath), onnxFormat);
  assert.equal((await detectFormat(safetensorsPath)).id, 'safetensors');
  assert.equal((await detectFormat(zipPath)).id, 'pytorch');
  assert.ok(FORMATS.includes(onnxFormat));
  assert.equal(new Set(FORMATS.map((f) => f.id)).size, FORMATS.length, 'format ids are unique');
  const model = await openModel(zooPath);
  assert.equal(model.summary.format, 'onnx');
  assert.equal(model.layers.length, 22);
});

test('ONNX-only work refuses another format from its first bytes, saying what to do', async () => {
  assert.equal((await openOnnxModel(zooPath)).layers.length, 22);
  await assert.rejects(openOnnxModel(safetensorsPath), isError('UNSUPPORTED', /model\.safetensors is a safetensors file.*Export the model to ONNX/));
  await assert.rejects(openOnnxModel(zipPath), isError('UNSUPPORTED', /model\.pt is a PyTorch checkpoint.*Export the model to ONNX/));
});

test('a FIFO, a device or a folder is refused at once, never opened for reading', { timeout: 5000 }, async () => {
  const fifo = join(dir, 'pipe.onnx');
  execFileSync('mkfifo', [fifo]);
  // Before: opening the FIFO blocked until a writer came (forever).
  await assert.rejects(openModel(fifo), isError('BAD_ARGUMENT', /pipe\.onnx is not a regular file/));
  await assert.rejects(openOnnxModel(fifo), isError('BAD_ARGUMENT', /not a regular file/));
  await assert.rejects(openModel('/dev/zero'), isError('BAD_ARGUMENT', /\/dev\/zero is not a regular file/));
  const folder = join(dir, 'folder.onnx');
  mkdirSync(folder);
  await assert.rejects(openModel(folder), isError('BAD_ARGUMENT', /folder\.onnx is a folder/));
  await assert.rejects(openModel(join(dir, 'missing.onnx')), isError('NOT_FOUND', /missing\.onnx/));
});
