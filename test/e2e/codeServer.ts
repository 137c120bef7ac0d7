// A real VS Code for the end-to-end test: code-server (installed by scripts/install-code-server.sh
// under .vscode-test/code-server) with our packaged .vsix installed through its own CLI, a fresh
// user-data and extensions folder per run, opened in Chromium on a workspace folder. Starting the
// server is scripts/code-server.cjs, shared with scripts/test-integration.mjs; what is here is the
// e2e suite's own: the .vsix install and the settings its screenshots depend on.
import { spawnSync } from 'node:child_process';
import { CODE_SERVER, ROOT, codeServerInstalled, startCodeServer as start } from '../../scripts/code-server.cjs';

export { CODE_SERVER, ROOT, codeServerInstalled };

export interface CodeServer {
  url: string;
  log: string[];
  stop(): void;
}

/** The e2e suite's settings over the shared ones: a fixed theme and no command center. */
const E2E_SETTINGS = {
  'workbench.colorTheme': 'Default Dark Modern',
  'window.commandCenter': false,
  'chat.commandCenter.enabled': false,
};

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
  const { url, log, stop } = await start({
    ...opts,
    settings: { ...E2E_SETTINGS, ...opts.settings },
    logLevel: process.env.RANKSCOPE_E2E_LOG_LEVEL ?? 'info',
  });
  return { url, log, stop };
}
