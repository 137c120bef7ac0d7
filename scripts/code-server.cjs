// Starting code-server for the tests that need a real VS Code: the one implementation shared by
// scripts/test-integration.mjs (extension-host suites through the workbench payload) and
// test/e2e/codeServer.ts (the Playwright end-to-end suite, run from scripts/test-e2e.mjs).
// CommonJS so that both the .mjs script (plain node) and the CommonJS TypeScript under tsx import
// it; its types are in code-server.d.cts. Suite-specific settings stay with the suites.
'use strict';
const { spawn } = require('node:child_process');
const { existsSync, mkdirSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:net');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');
/** code-server's entry point, installed by scripts/install-code-server.sh. */
const CODE_SERVER = join(ROOT, '.vscode-test', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

/** User settings every test run gets: no welcome page, trust prompt, telemetry, updates or tips. */
const BASE_SETTINGS = {
  'workbench.startupEditor': 'none',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'workbench.tips.enabled': false,
};

function codeServerInstalled() {
  return existsSync(CODE_SERVER);
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

/**
 * Writes the user settings (BASE_SETTINGS, then opts.settings) and a config.yaml under opts.tmp,
 * starts code-server on a free port in its own process group (ended on process exit) and waits
 * for /healthz. Throws when it exits or does not answer in 60 s; the message carries the server's
 * output unless opts.onOutput already showed it.
 */
async function startCodeServer(opts) {
  mkdirSync(join(opts.userData, 'User'), { recursive: true });
  writeFileSync(join(opts.userData, 'User', 'settings.json'), JSON.stringify({ ...BASE_SETTINGS, ...opts.settings }));
  writeFileSync(join(opts.tmp, 'config.yaml'), 'auth: none\ncert: false\n');
  const port = await freePort();
  const server = spawn(process.execPath, [
    CODE_SERVER, '--config', join(opts.tmp, 'config.yaml'), '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--user-data-dir', opts.userData, '--extensions-dir', opts.extensions,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--log', opts.logLevel ?? 'info',
  ], { cwd: opts.workspace, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  const log = [];
  const onData = (d) => {
    const text = String(d);
    log.push(text);
    opts.onOutput?.(text);
  };
  server.stdout.on('data', onData);
  server.stderr.on('data', onData);
  const stop = () => {
    // The server was started in its own process group: end it and its extension hosts.
    try { process.kill(-server.pid, 'SIGKILL'); } catch { /* already gone */ }
  };
  process.on('exit', stop);
  const detail = () => (opts.onOutput ? '' : `:\n${log.join('')}`);
  const t0 = Date.now();
  for (;;) {
    if (server.exitCode !== null) throw new Error(`code-server exited (${server.exitCode})${detail()}`);
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() - t0 > 60_000) { stop(); throw new Error(`code-server did not start in 60 s${detail()}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(opts.workspace)}`, log, stop };
}

module.exports = { ROOT, CODE_SERVER, BASE_SETTINGS, codeServerInstalled, freePort, startCodeServer };
