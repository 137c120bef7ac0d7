// core/fs/atomicWrite: the one way Rankscope writes a file. Real files, links, FIFOs and devices
// in a temp folder; a real child process for the exit-time cleanup.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  checkOutputPath, commitAll, ensureOutputFolder, outputPathProblem, PendingFile, writeFileAtomic, writeFileAtomicSync,
} from '../../../src/core/fs/atomicWrite';
import { openOnnx, writeOnnxAtomic } from '../../../src/core/formats/onnx';
import { runPython } from '../../helpers/python';
import { buildZoo } from '../formats/fixtures';
import { isError } from '../../helpers/errors';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'rankscope-atomic-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

function fresh(name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  return d;
}

test('writes a new file and replaces an old one, leaving no temp file', async () => {
  const d = fresh('plain');
  const p = join(d, 'out.json');
  assert.equal(await writeFileAtomic(p, 'one'), p);
  assert.equal(await writeFileAtomic(p, new Uint8Array([116, 119, 111])), p);
  assert.equal(readFileSync(p, 'utf8'), 'two');
  assert.equal(writeFileAtomicSync(p, 'three'), p);
  assert.equal(readFileSync(p, 'utf8'), 'three');
  assert.deepEqual(readdirSync(d), ['out.json']);
});

test('a symlink to a file: the file is replaced, the link kept; a dangling link is refused', async () => {
  const d = fresh('links');
  const real = join(d, 'real.txt');
  writeFileSync(real, 'old');
  const link = join(d, 'link.txt');
  symlinkSync('real.txt', link);
  assert.equal(await writeFileAtomic(link, 'new'), real);
  assert.equal(readFileSync(real, 'utf8'), 'new');
  assert.equal(readlinkSync(link), 'real.txt');
  const dangling = join(d, 'dangling.txt');
  symlinkSync('nowhere.txt', dangling);
  await assert.rejects(writeFileAtomic(dangling, 'x'), isError('OUTPUT', /dangling\.txt is a symbolic link to nowhere\.txt, which does not exist/));
  assert.deepEqual(readdirSync(d).sort(), ['dangling.txt', 'link.txt', 'real.txt']);
});

test('only regular files are written: a FIFO, a device or a folder is refused and left as it was', async () => {
  const d = fresh('special');
  const fifo = join(d, 'pipe');
  execFileSync('mkfifo', [fifo]);
  await assert.rejects(writeFileAtomic(fifo, 'x'), isError('OUTPUT', /pipe is a named pipe \(FIFO\), not a regular file/));
  assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO is still a FIFO');
  assert.throws(() => writeFileAtomicSync(fifo, 'x'), isError('OUTPUT', /FIFO/));
  // Checked without writing: a regression here must not replace the machine's /dev/null.
  assert.throws(() => checkOutputPath('/dev/null'), isError('OUTPUT', /\/dev\/null is a device, not a regular file/));
  assert.ok(lstatSync('/dev/null').isCharacterDevice());
  const folder = join(d, 'folder.onnx');
  mkdirSync(folder);
  await assert.rejects(writeFileAtomic(folder, 'x'), isError('OUTPUT', /folder\.onnx is a folder, not a file/));
  // A link to a FIFO is followed, then refused.
  const toFifo = join(d, 'to-pipe');
  symlinkSync(fifo, toFifo);
  await assert.rejects(writeFileAtomic(toFifo, 'x'), isError('OUTPUT', /to-pipe is a named pipe/));
  assert.deepEqual(readdirSync(d).sort(), ['folder.onnx', 'pipe', 'to-pipe']);
});

test('an unwritable place names the path and what to do', async () => {
  const d = fresh('places');
  const file = join(d, 'file.txt');
  writeFileSync(file, 'x');
  await assert.rejects(writeFileAtomic(join(d, 'missing', 'out.onnx'), 'x'), isError('OUTPUT', /out\.onnx: the folder .*missing does not exist.*Create the folder first/));
  await assert.rejects(writeFileAtomic(join(file, 'out.onnx'), 'x'), isError('OUTPUT', /file\.txt is a file, not a folder/));
  await assert.rejects(writeFileAtomic(join(file, 'a', 'b', 'out.onnx'), 'x', { createFolder: true }), isError('OUTPUT', /file\.txt is a file, not a folder/));
  assert.throws(() => ensureOutputFolder(file), isError('OUTPUT', /file\.txt is a file, not a folder/));
  // createFolder makes the missing folders.
  assert.equal(await writeFileAtomic(join(d, 'made', 'deep', 'out.txt'), 'ok', { createFolder: true }), join(d, 'made', 'deep', 'out.txt'));
  assert.equal(ensureOutputFolder(join(d, 'reports', 'run1')), join(d, 'reports', 'run1'));
  assert.equal(outputPathProblem(join(d, 'fine.txt')), undefined);
  assert.match(outputPathProblem(join(d, 'missing', 'x.onnx'))!, /does not exist/);
});

test('never over an input: the same path, relative, through a symlink or a hard link', async () => {
  const d = fresh('inputs');
  const model = join(d, 'model.onnx');
  writeFileSync(model, 'the user\'s model');
  symlinkSync('model.onnx', join(d, 'alias.onnx'));
  linkSync(model, join(d, 'hard.onnx'));
  const rel = resolve(model).replace(`${process.cwd()}/`, '');
  for (const out of [model, rel, join(d, 'alias.onnx'), join(d, 'hard.onnx'), join(d, '.', 'model.onnx')]) {
    await assert.rejects(writeFileAtomic(out, 'x', { inputs: [model] }), isError('BAD_ARGUMENT', /is the input model.*never overwrites a model/), out);
  }
  assert.throws(() => checkOutputPath(join(d, 'alias.onnx'), { inputs: [undefined, model] }), /never overwrites/);
  assert.equal(readFileSync(model, 'utf8'), 'the user\'s model');
  assert.equal(checkOutputPath(join(d, 'other.onnx'), { inputs: [model] }), join(d, 'other.onnx'));
});

test('a cancelled write never lands: the old file stays, the temp file goes', async () => {
  const d = fresh('cancel');
  const p = join(d, 'out.bin');
  writeFileSync(p, 'old');
  const controller = new AbortController();
  const file = await PendingFile.create(p, { signal: controller.signal });
  await file.writeAll(new Uint8Array(1000));
  assert.equal(readdirSync(d).length, 2, 'the temp file sits next to the target');
  controller.abort();
  await assert.rejects(file.commit(), isError('CANCELLED', /Cancelled/));
  await file.discard();
  assert.deepEqual(readdirSync(d), ['out.bin']);
  assert.equal(readFileSync(p, 'utf8'), 'old');
  await assert.rejects(writeFileAtomic(p, 'x', { signal: controller.signal }), isError('CANCELLED', /Cancelled/));
  assert.deepEqual(readdirSync(d), ['out.bin']);
});

test('files that land together: nothing is renamed when one of them cannot be', async () => {
  const d = fresh('together');
  const a = await PendingFile.create(join(d, 'model.onnx.data'));
  const b = await PendingFile.create(join(d, 'model.onnx'));
  await a.writeAll(new Uint8Array([1]));
  await b.writeAll(new Uint8Array([2]));
  execFileSync('mkfifo', [join(d, 'model.onnx')]); // appears while we write
  await assert.rejects(commitAll([a, b]), isError('OUTPUT', /model\.onnx is a named pipe/));
  await a.discard();
  await b.discard();
  assert.deepEqual(readdirSync(d), ['model.onnx']);
});

test('a process that exits mid-write (a second Ctrl-C) leaves no temp file', () => {
  const d = fresh('exit');
  const script = `
    const { PendingFile } = require(${JSON.stringify(resolve('src/core/fs/atomicWrite.ts'))});
    PendingFile.create(${JSON.stringify(join(d, 'out.onnx'))}).then(async (f) => {
      await f.writeAll(new Uint8Array(4096));
      process.stdout.write(require('node:fs').readdirSync(${JSON.stringify(d)}).join(','));
      process.exit(130);
    });`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 130, r.stderr);
  assert.match(r.stdout, /^\.out\.onnx\.\d+\.[0-9a-f]{8}\.tmp$/, 'the temp file existed before the exit');
  assert.deepEqual(readdirSync(d), []);
});

test('an ONNX write never replaces the external data it reads from', async () => {
  const d = fresh('external');
  const zoo = buildZoo(d).path;
  // The model's weights live in `out.onnx.data`: writing `out.onnx` would replace them.
  runPython(`import onnx,sys
m=onnx.load(sys.argv[1]); onnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True, location='out.onnx.data', size_threshold=256)`, [zoo, join(d, 'ext.onnx')]);
  const data = join(d, 'out.onnx.data');
  const before = readFileSync(data);
  const model = await openOnnx(join(d, 'ext.onnx'));
  await assert.rejects(writeOnnxAtomic(join(d, 'out.onnx'), model.proto), isError('BAD_ARGUMENT', /out\.onnx\.data is the input model; Rankscope never overwrites a model/));
  assert.deepEqual(readFileSync(data), before);
  assert.ok(!existsSync(join(d, 'out.onnx')));
  assert.deepEqual(readdirSync(d).filter((f) => f.endsWith('.tmp')), []);
  // Anywhere else it writes, and the copy reads back the same weights.
  await writeOnnxAtomic(join(d, 'copy.onnx'), model.proto, { inputs: [model.path] });
  const copy = await openOnnx(join(d, 'copy.onnx'));
  assert.deepEqual(Buffer.from(copy.tensor('embed.weight')!.bytes()), Buffer.from(model.tensor('embed.weight')!.bytes()));
});
