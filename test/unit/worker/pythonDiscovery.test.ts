// Python discovery (issue 13 item 2) with real interpreters: a fake virtual environment whose
// python3 runs the system Python with -S (no site-packages, so no torch) comes first on PATH;
// discovery must skip it, say why, and pick /usr/bin/python3 (Debian's python3-torch). The CLI's
// `finetune --check` finds the same one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeDiscovery, discoverPython, noPythonError } from '../../../src/worker/pythonDiscovery';

const SYSTEM = '/usr/bin/python3';
const hasTorch = existsSync(SYSTEM) && spawnSync(SYSTEM, ['-c', 'import torch, numpy']).status === 0;
const skip = (process.platform === 'win32' || !hasTorch) && 'needs /usr/bin/python3 with torch (POSIX)';

/** `<dir>/bin/python3`: the system Python without site-packages (no torch), like a bare venv. */
function fakeVenv(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-venv-'));
  mkdirSync(join(dir, 'bin'));
  const py = join(dir, 'bin', 'python3');
  writeFileSync(py, `#!/bin/sh\nexec ${SYSTEM} -S "$@"\n`);
  chmodSync(py, 0o755);
  return dir;
}

test('a torch-less python3 first on PATH is skipped with its reason; /usr/bin/python3 is chosen', { skip }, async () => {
  const venv = fakeVenv();
  const env = { PATH: `${join(venv, 'bin')}:/usr/bin:/bin`, VIRTUAL_ENV: venv };
  const d = await discoverPython([{ path: join(venv, 'bin', 'python3'), source: 'setting' }], { env });
  assert.equal(d.chosen?.executable, SYSTEM);
  assert.match(d.chosen!.torch, /^\d+\.\d+/);
  assert.equal(d.chosen!.source, 'system Python');
  // The setting's interpreter is probed once (the venv's and PATH's python3 are the same file).
  const skipped = d.probes.filter((p) => p.rejected);
  assert.deepEqual(skipped.map((p) => p.source), ['setting', 'python on PATH']);
  assert.match(skipped[0]!.rejected!, /no PyTorch\/numpy \(ModuleNotFoundError: No module named '(torch|numpy)'\)/);
  assert.match(skipped[1]!.rejected!, /not on PATH/);
  const lines = describeDiscovery(d);
  assert.equal(lines[0], `Python for fine-tuning: ${SYSTEM} (system Python), torch ${d.chosen!.torch}`);
  assert.ok(lines.some((l) => l.includes(`skipped ${join(venv, 'bin', 'python3')} (setting): no PyTorch`)));
});

test('no candidate with torch: the error lists each one with its reason and says how to fix it', { skip }, async () => {
  const venv = fakeVenv();
  const d = await discoverPython([], { env: { PATH: join(venv, 'bin') }, systemPythons: ['/nonexistent/python3'] });
  assert.equal(d.chosen, undefined);
  const e = noPythonError(d, 'Set the interpreter.');
  assert.match(e.message, /^No Python with PyTorch and numpy was found\. Tried: .*\/bin\/python3 \(python3 on PATH: no PyTorch.*\/nonexistent\/python3 \(system Python: no such file\)/);
  assert.match(e.hint!, /^Set the interpreter\. /);
  assert.doesNotMatch(`${e.message} ${e.hint}`, /pythonPath/);
});

test('CLI: `rankscope finetune --check` discovers the same interpreter', { skip }, () => {
  const venv = fakeVenv();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'finetune', '--check'], {
    encoding: 'utf8', env: { ...process.env, PATH: `${join(venv, 'bin')}:${process.env.PATH}`, VIRTUAL_ENV: venv, RANKSCOPE_PYTHON: '' }, timeout: 180_000,
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^Fine-tuning environment \\(${SYSTEM}\\): ready`, 'm'));
  assert.match(r.stdout, /skipped .*rankscope-venv-.*\/bin\/python3 \(active virtual environment \(\$VIRTUAL_ENV\)\): no PyTorch/);
});
