// Text for VS Code's own widgets. Numbers are formatted by src/core/format.ts, shared with the
// CLI and the webviews.

/** Untrusted text for QuickPick labels and titles, which render `$(icon)` syntax: shown literally. */
export function quickPickText(s: string): string {
  return s.replace(/\$\(/g, '$\u200b(');
}
