// The Python that tests use as a reference (numpy/scipy LAPACK) and to run the worker (torch).
// Debian's /usr/bin/python3 carries python3-torch/numpy/scipy; a pyenv or venv python earlier on
// PATH often does not. RANKSCOPE_TEST_PYTHON overrides.
import { existsSync } from 'node:fs';

export function testPython() {
  if (process.env.RANKSCOPE_TEST_PYTHON) return process.env.RANKSCOPE_TEST_PYTHON;
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}
