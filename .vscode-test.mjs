// @vscode/test-cli configuration: the integration suites in a downloaded VS Code (Electron).
// `npm run test:integration:electron` compiles them first; offline, scripts/test-integration.mjs
// runs the very same files in code-server instead.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '@vscode/test-cli';

export default defineConfig({
  label: 'integration',
  files: 'out/test/integration/*.test.js',
  version: '1.100.3',
  workspaceFolder: mkdtempSync(join(tmpdir(), 'rankscope-it-')),
  mocha: { ui: 'tdd', timeout: 120_000 },
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
});
