// Loads one built view (dist/webview/<view>.js) in Debian's Chromium inside the same HTML shell
// and CSP the extension serves (webview/shared/html.ts), with VS Code's theme variables set.
// The test plays the extension host: it reads what the view posts and sends it notifications
// and replies in the wire format (webview/shared/ipc.ts). Used for the views' component tests;
// the full product runs in code-server in vscode.e2e.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { webviewHtml } from '../../webview/shared/html';
import type { NotificationType, WireMessage } from '../../webview/shared/ipc';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.RANKSCOPE_CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** VS Code derives the settings-editor input colours (used by @vscode-elements) from the input ones. */
function settingsVars(background: string, foreground: string, border: string): Record<string, string> {
  return {
    'settings-textInputBackground': background, 'settings-textInputForeground': foreground, 'settings-textInputBorder': border,
    'settings-dropdownBackground': background, 'settings-dropdownForeground': foreground, 'settings-dropdownBorder': border,
    'settings-dropdownListBorder': border, 'settings-checkboxBackground': background, 'settings-checkboxForeground': foreground,
    'settings-checkboxBorder': border,
  };
}

export type Theme = 'dark' | 'light' | 'high-contrast';

// The variables VS Code sets on a webview's <html> for its default themes (a subset: the ones our
// CSS, Chart.js setup and @vscode-elements read). Values copied from Dark Modern / Light Modern / Dark HC.
const THEMES: Record<Theme, { bodyClass: string; vars: Record<string, string> }> = {
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      foreground: '#cccccc', descriptionForeground: '#9d9d9d', 'editor-background': '#1f1f1f', 'editor-foreground': '#cccccc',
      'sideBar-background': '#181818', focusBorder: '#0078d4', 'panel-border': '#2b2b2b', 'widget-border': '#313131',
      'button-background': '#0078d4', 'button-foreground': '#ffffff', 'button-hoverBackground': '#026ec1',
      'button-secondaryBackground': '#313131', 'button-secondaryForeground': '#cccccc', 'button-secondaryHoverBackground': '#3c3c3c',
      'input-background': '#313131', 'input-foreground': '#cccccc', 'input-border': '#3c3c3c',
      'dropdown-background': '#313131', 'dropdown-foreground': '#cccccc', 'dropdown-border': '#3c3c3c',
      'checkbox-background': '#313131', 'checkbox-border': '#3c3c3c', 'checkbox-foreground': '#cccccc',
      ...settingsVars('#313131', '#cccccc', '#3c3c3c'),
      'charts-foreground': '#cccccc', 'charts-lines': 'rgba(204,204,204,0.5)', 'charts-red': '#f14c4c', 'charts-blue': '#3794ff',
      'charts-yellow': '#cca700', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-purple': '#b180d7',
      'editorWarning-foreground': '#cca700', errorForeground: '#f85149', 'progressBar-background': '#0078d4',
      'textLink-foreground': '#4daafc', 'list-activeSelectionBackground': '#04395e', 'list-activeSelectionForeground': '#ffffff',
      'font-family': 'system-ui, sans-serif', 'font-size': '13px', 'editor-font-family': 'monospace',
    },
  },
  light: {
    bodyClass: 'vscode-light',
    vars: {
      foreground: '#3b3b3b', descriptionForeground: '#3b3b3b', 'editor-background': '#ffffff', 'editor-foreground': '#3b3b3b',
      'sideBar-background': '#f8f8f8', focusBorder: '#005fb8', 'panel-border': '#e5e5e5', 'widget-border': '#e5e5e5',
      'button-background': '#005fb8', 'button-foreground': '#ffffff', 'button-hoverBackground': '#0258a8',
      'button-secondaryBackground': '#e5e5e5', 'button-secondaryForeground': '#3b3b3b', 'button-secondaryHoverBackground': '#cccccc',
      'input-background': '#ffffff', 'input-foreground': '#3b3b3b', 'input-border': '#cecece',
      'dropdown-background': '#ffffff', 'dropdown-foreground': '#3b3b3b', 'dropdown-border': '#cecece',
      'checkbox-background': '#f8f8f8', 'checkbox-border': '#cecece', 'checkbox-foreground': '#3b3b3b',
      ...settingsVars('#ffffff', '#3b3b3b', '#cecece'),
      'charts-foreground': '#616161', 'charts-lines': 'rgba(97,97,97,0.5)', 'charts-red': '#e51400', 'charts-blue': '#1a85ff',
      'charts-yellow': '#bf8803', 'charts-orange': '#d18616', 'charts-green': '#388a34', 'charts-purple': '#652d90',
      'editorWarning-foreground': '#bf8803', errorForeground: '#f85149', 'progressBar-background': '#005fb8',
      'textLink-foreground': '#4daafc', 'list-activeSelectionBackground': '#e8e8e8', 'list-activeSelectionForeground': '#000000',
      'font-family': 'system-ui, sans-serif', 'font-size': '13px', 'editor-font-family': 'monospace',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      foreground: '#ffffff', descriptionForeground: '#ffffff', 'editor-background': '#000000', 'editor-foreground': '#ffffff',
      'sideBar-background': '#000000', focusBorder: '#f38518', 'panel-border': '#6fc3df', 'widget-border': '#6fc3df', contrastBorder: '#6fc3df',
      'button-background': '#000000', 'button-foreground': '#ffffff', 'button-border': '#6fc3df',
      'button-secondaryBackground': '#000000', 'button-secondaryForeground': '#ffffff',
      'input-background': '#000000', 'input-foreground': '#ffffff', 'input-border': '#6fc3df',
      'dropdown-background': '#000000', 'dropdown-foreground': '#ffffff', 'dropdown-border': '#6fc3df',
      'checkbox-background': '#000000', 'checkbox-border': '#6fc3df', 'checkbox-foreground': '#ffffff',
      ...settingsVars('#000000', '#ffffff', '#6fc3df'),
      'charts-foreground': '#ffffff', 'charts-lines': 'rgba(255,255,255,0.5)', 'charts-red': '#f14c4c', 'charts-blue': '#3794ff',
      'charts-yellow': '#cca700', 'charts-orange': '#d18616', 'charts-green': '#89d185', 'charts-purple': '#b180d7',
      'editorWarning-foreground': '#fff50a', errorForeground: '#f48771', 'progressBar-background': '#6fc3df',
      'textLink-foreground': '#4daafc', 'list-activeSelectionBackground': '#000000', 'list-activeSelectionForeground': '#ffffff',
      'font-family': 'system-ui, sans-serif', 'font-size': '13px', 'editor-font-family': 'monospace',
    },
  },
};

/** The text colour a theme gives the views (the editor foreground). */
export const themeForeground = (theme: Theme): string => THEMES[theme].vars['editor-foreground']!;

const ORIGIN = 'https://rankscope-webview.test';

export interface ViewHarness {
  page: Page;
  /** Everything the view posted, in order (commands, requests). */
  posted(): Promise<{ type: string; method: string; id?: number; params: unknown }[]>;
  /** Waits until the view posted a message with this method; returns the latest one. */
  waitForPost(method: string, timeoutMs?: number): Promise<{ type: string; method: string; id?: number; params: unknown }>;
  notify<P>(type: NotificationType<P>, params: P): Promise<void>;
  reply(id: number, result: unknown, error?: string): Promise<void>;
  /** Switches the theme the way VS Code's webview host does (body class, then the variables on <html>). */
  switchTheme(theme: Theme): Promise<void>;
  /** Console errors and CSP violations seen so far. */
  problems: string[];
  close(): Promise<void>;
}

export async function openView(
  browser: Browser,
  view: 'spectrum' | 'tradeoff' | 'overview' | 'finetune',
  opts: { theme?: Theme; state?: unknown; width?: number; height?: number } = {},
): Promise<ViewHarness> {
  const theme = THEMES[opts.theme ?? 'dark'];
  const context = await browser.newContext({ viewport: { width: opts.width ?? 520, height: opts.height ?? 720 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  const root = join(__dirname, '..', '..');
  await page.route(`${ORIGIN}/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/index.html') {
      const html = webviewHtml({
        cspSource: ORIGIN, nonce: 'harnessnonce', script: `${ORIGIN}/dist/webview/${view}.js`,
        styles: [`${ORIGIN}/media/webview.css`], title: view,
      });
      return route.fulfill({ body: html, contentType: 'text/html' });
    }
    try {
      const body = readFileSync(join(root, path));
      return route.fulfill({ body, contentType: path.endsWith('.css') ? 'text/css' : 'text/javascript' });
    } catch {
      return route.fulfill({ status: 404 });
    }
  });
  // What VS Code's webview host provides before the page's scripts run. A string, not a function:
  // tsx's transform would leave helper calls in a serialized function that the page lacks.
  await page.addInitScript(`(() => {
    const vars = ${JSON.stringify(theme.vars)};
    const bodyClass = ${JSON.stringify(theme.bodyClass)};
    let saved = ${JSON.stringify(opts.state ?? null)} ?? undefined;
    const posted = [];
    window.__posted = posted;
    window.__state = () => saved;
    let acquired = false;
    window.acquireVsCodeApi = () => {
      if (acquired) throw new Error('acquireVsCodeApi called twice');
      acquired = true;
      return {
        postMessage: (m) => posted.push(JSON.parse(JSON.stringify(m))),
        getState: () => saved,
        setState: (s) => { saved = JSON.parse(JSON.stringify(s)); },
      };
    };
    // VS Code sets the theme variables on <html> and the theme class on <body> before the view runs.
    let varsSet = false;
    new MutationObserver((_, obs) => {
      if (document.documentElement && !varsSet) {
        varsSet = true;
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty('--vscode-' + k, v);
      }
      if (document.body) { document.body.classList.add(bodyClass); obs.disconnect(); }
    }).observe(document, { childList: true, subtree: true });
  })();`);
  await page.goto(`${ORIGIN}/index.html`);
  const posted = (): Promise<{ type: string; method: string; id?: number; params: unknown }[]> =>
    page.evaluate(() => (window as unknown as { __posted: never[] }).__posted);
  const send = (m: WireMessage): Promise<void> => page.evaluate((msg) => window.postMessage(msg, '*'), m);
  return {
    page,
    posted,
    async waitForPost(method, timeoutMs = 5000) {
      // Functions passed to the page must stay anonymous (see addInitScript above).
      const handle = await page.waitForFunction(
        (m) => [...(window as unknown as { __posted: { method: string }[] }).__posted].reverse().find((x) => x.method === m),
        method, { timeout: timeoutMs });
      return handle.jsonValue() as never;
    },
    async switchTheme(to) {
      // VS Code's pre/index.html `applyStyles`, in one task: swap the class, drop and re-add the variables.
      await page.evaluate(({ bodyClass, vars }) => {
        document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast', 'vscode-high-contrast-light');
        document.body.classList.add(bodyClass);
        document.body.dataset.vscodeThemeKind = bodyClass;
        const style = document.documentElement.style;
        for (let i = style.length - 1; i >= 0; i--) if (style[i]!.startsWith('--vscode-')) style.removeProperty(style[i]!);
        for (const [k, v] of Object.entries(vars)) style.setProperty(`--vscode-${k}`, v);
      }, THEMES[to]);
      // The view redraws in the observer's microtask; one frame later the canvas shows it.
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(undefined))));
    },
    notify: (type, params) => send({ type: 'notification', method: type.method, params }),
    reply: (id, result, error) => send(error === undefined ? { type: 'response', id, result } : { type: 'response', id, error }),
    problems,
    close: () => context.close(),
  };
}
