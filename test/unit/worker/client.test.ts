// FinetuneWorker supervision with stand-in workers (shell scripts speaking the protocol badly on
// purpose): a hello that never comes, and a worker that ignores `cancel` — whose whole process
// tree (a child it started included) must be killed after the grace period.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RankscopeError } from '../../../src/core/errors';
import { FinetuneWorker } from '../../../src/worker/client';
import { PROTOCOL_VERSION, type FinetuneConfig } from '../../../src/worker/protocol';

const posix = process.platform !== 'win32';
const dir = mkdtempSync(join(tmpdir(), 'rankscope-client-'));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

/** Running (a killed process may linger as a zombie until something reaps it: that counts as dead). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
}
const hello = JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, worker: 'fake', python: '0', executable: 'sh', platform: 'x', torch: '0', numpy: '0', cuda: { available: false, version: null, devices: [] }, mps: false, bf16: false });

test('no hello within the timeout: a WORKER error, and the process is gone', { skip: !posix && 'POSIX shell' }, async () => {
  const python = script('silent.sh', 'echo "loading torch…" >&2\nexec sleep 30');
  const t0 = Date.now();
  await assert.rejects(FinetuneWorker.launch({ python, helloTimeoutMs: 800 }),
    (e: unknown) => e instanceof RankscopeError && e.code === 'WORKER' && /did not start within/.test(e.message) && /loading torch/.test(e.message));
  assert.ok(Date.now() - t0 < 10_000);
});

test('a worker that ignores cancel is killed with its children after the grace period', { skip: !posix && 'POSIX shell' }, async () => {
  const pidFile = join(dir, 'child.pid');
  const python = script('stubborn.sh', `echo '${hello}'\nsleep 60 &\necho $! > ${pidFile}\nwhile true; do sleep 1; done`);
  const worker = await FinetuneWorker.launch({ python, cancelGraceMs: 700, helloTimeoutMs: 10_000 });
  await new Promise((r) => setTimeout(r, 300));
  const child = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(alive(child));
  const controller = new AbortController();
  const run = worker.run({ graph: 'x', data: { path: 'x' }, epochs: 1, lr: 1, outDir: dir } as FinetuneConfig, { signal: controller.signal });
  controller.abort();
  await assert.rejects(run, (e: unknown) => e instanceof RankscopeError && e.code === 'CANCELLED');
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(alive(worker.pid!), false, 'worker killed');
  assert.equal(alive(child), false, 'its child killed with the process group');
});

test('a wrong protocol version is refused', { skip: !posix && 'POSIX shell' }, async () => {
  const python = script('old.sh', `echo '${hello.replace(`"protocol":${PROTOCOL_VERSION}`, '"protocol":0')}'\nexec sleep 30`);
  await assert.rejects(FinetuneWorker.launch({ python }), (e: unknown) => e instanceof RankscopeError && /protocol 0/.test(e.message));
});
