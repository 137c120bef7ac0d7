// Host side of the webview shell (webview/shared/html.ts): which bundle and styles a view loads,
// resolved to webview URIs, and the options that confine it to our own folders.
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { makeNonce, webviewHtml } from '../../../webview/shared/html';

export type WebviewName = 'spectrum' | 'tradeoff' | 'overview' | 'finetune';

/** Scripts on; resources only from `dist/webview` and `media`; no command links. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return {
    enableScripts: true,
    enableCommandUris: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

/** The page for `dist/webview/<name>.js`, with a fresh nonce on every call. */
export function htmlFor(webview: vscode.Webview, extensionUri: vscode.Uri, name: WebviewName, title: string): string {
  const styles = [
    vscode.Uri.joinPath(extensionUri, 'media', 'webview.css'),
    vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${name}.css`),
  ].filter((u) => existsSync(u.fsPath));
  return webviewHtml({
    cspSource: webview.cspSource,
    nonce: makeNonce(),
    script: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${name}.js`)).toString(),
    styles: styles.map((u) => webview.asWebviewUri(u).toString()),
    title,
  });
}
