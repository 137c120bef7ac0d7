// A real VS Code for the end-to-end test: code-server (installed by scripts/install-code-server.sh
// under .vscode-test/code-server) with our packaged .vsix installed through its own CLI, a fresh
// user-data and extensions folder per run, opened in Chromium on a workspace folder.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const CODE_SERVER = join(ROOT, '.vscode-test', 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');

export interface CodeServer {
  url: string;
  log: string[];
  stop(): void;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

/** Installs the .vsix with code-server's CLI (as a user would); returns the installed extension ids. */
export function installVsix(vsix: string, dirs: { userData: string; extensions: string }): string[] {
  const r = spawnSync(process.execPath, [
    CODE_SERVER, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix, '--force',
  ], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const list = spawnSync(process.execPath, [
    CODE_SERVER, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--list-extensions', '--show-versions',
  ], { encoding: 'utf8', timeout: 60_000 });
  return list.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

export async function startCodeServer(opts: { tmp: string; workspace: string; userData: string; extensions: string; settings?: Record<string, unknown> }): Promise<CodeServer> {
  mkdirSync(join(opts.userData, 'User'), { recursive: true });
  writeFileSync(join(opts.userData, 'User', 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'workbench.tips.enabled': false,
    'workbench.colorTheme': 'Default Dark Modern',
    'window.commandCenter': false,
    'chat.commandCenter.enabled': false,
    ...opts.settings,
  }));
  writeFileSync(join(opts.tmp, 'config.yaml'), 'auth: none\ncert: false\n');
  const port = await freePort();
  const server: ChildProcess = spawn(process.execPath, [
    CODE_SERVER, '--config', join(opts.tmp, 'config.yaml'), '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--user-data-dir', opts.userData, '--extensions-dir', opts.extensions,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--log', process.env.RANKSCOPE_E2E_LOG_LEVEL ?? 'info',
  ], { cwd: opts.workspace, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  server.stdout!.on('data', (d) => log.push(String(d)));
  server.stderr!.on('data', (d) => log.push(String(d)));
  const stop = (): void => {
    // The server was started in its own process group: end it and its extension hosts.
    try { process.kill(-server.pid!, 'SIGKILL'); } catch { /* already gone */ }
  };
  process.on('exit', stop);
  const t0 = Date.now();
  for (;;) {
    if (server.exitCode !== null) throw new Error(`code-server exited (${server.exitCode}):\n${log.join('')}`);
    if (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() - t0 > 60_000) { stop(); throw new Error(`code-server did not start in 60 s:\n${log.join('')}`); }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(opts.workspace)}`, log, stop };
}

export function codeServerInstalled(): boolean {
  return existsSync(CODE_SERVER);
}
