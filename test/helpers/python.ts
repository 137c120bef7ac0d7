// Run a Python reference computation (numpy/scipy LAPACK, PyTorch) from a test.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function testPython(): string {
  if (process.env.RANKSCOPE_TEST_PYTHON) return process.env.RANKSCOPE_TEST_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

/** Runs `code` with the test Python; returns stdout. Throws with stderr on failure. */
export function runPython(code: string, args: string[] = [], input?: string | Uint8Array): string {
  const r = spawnSync(testPython(), ['-c', code, ...args], { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr?.toString()}`);
  return r.stdout.toString();
}

/** True when the test Python can import all of `modules`. */
export function pythonHas(...modules: string[]): boolean {
  const r = spawnSync(testPython(), ['-c', modules.map((m) => `import ${m}`).join(';')]);
  return r.status === 0;
}
