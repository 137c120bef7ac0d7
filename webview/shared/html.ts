// The HTML shell every Rankscope webview is served in, written once so all views get the same
// strict CSP: scripts only with this load's nonce, styles/fonts/images only from the extension's
// resource roots. Host-agnostic (no 'vscode' import): the extension passes `webview.cspSource`
// and `asWebviewUri(...)` strings. The view's script builds the whole body itself.

export interface WebviewHtmlOptions {
  /** `webview.cspSource`. */
  cspSource: string;
  /** From `makeNonce()`, fresh for every `webview.html` assignment. */
  nonce: string;
  /** Webview URI of `dist/webview/<view>.js`. */
  script: string;
  /** Webview URIs of `media/webview.css` (and any view-specific sheet). */
  styles: string[];
  title: string;
}

export function makeNonce(): string {
  const bytes = new Uint8Array(18);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const escapeAttr = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function webviewHtml(o: WebviewHtmlOptions): string {
  const csp = [
    `default-src 'none'`,
    `img-src ${o.cspSource} data: blob:`,
    `style-src ${o.cspSource}`,
    `font-src ${o.cspSource}`,
    `script-src 'nonce-${o.nonce}'`,
  ].join('; ');
  const links = o.styles.map((href) => `<link rel="stylesheet" href="${escapeAttr(href)}">`).join('\n    ');
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    ${links}
    <title>${escapeAttr(o.title)}</title>
  </head>
  <body>
    <script nonce="${o.nonce}" src="${escapeAttr(o.script)}"></script>
  </body>
</html>`;
}
