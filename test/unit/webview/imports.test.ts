// docs/DESIGN.md's webview rule: the browser bundles import only webview/** and pure core code,
// never src/extension, and nothing they reach imports Node (node:*, fs, path…) or vscode.
// Followed transitively from each view's entry through relative imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..', '..');
const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const nodeBuiltins = new Set(builtinModules);

function resolveTs(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts'), base]) if (existsSync(candidate) && candidate.endsWith('.ts')) return candidate;
  throw new Error(`${relative(root, from)}: cannot resolve ${spec}`);
}

/** Every file a view's entry reaches, with the bare (package) imports each makes. */
function reach(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    const bare: string[] = [];
    seen.set(file, bare);
    for (const m of readFileSync(file, 'utf8').matchAll(importRe)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) todo.push(resolveTs(file, spec));
      else bare.push(spec);
    }
  }
  return seen;
}

const entries = readdirSync(join(root, 'webview'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, 'webview', d.name, 'main.ts')))
  .map((d) => join(root, 'webview', d.name, 'main.ts'));

test('every webview entry reaches only webview/** and pure src/core, with no Node or vscode import', () => {
  assert.ok(entries.length >= 4, `found the views: ${entries.map((e) => relative(root, e)).join(', ')}`);
  const offenders: string[] = [];
  for (const entry of entries) {
    for (const [file, bare] of reach(entry)) {
      const rel = relative(root, file).split('\\').join('/');
      if (!rel.startsWith('webview/') && !rel.startsWith('src/core/')) offenders.push(`${rel} (reached from ${relative(root, entry)})`);
      for (const spec of bare) {
        if (spec === 'vscode' || spec.startsWith('node:') || nodeBuiltins.has(spec.split('/')[0]!)) offenders.push(`${rel} imports ${spec}`);
      }
    }
  }
  assert.deepEqual(offenders, []);
});

test('the import walk sees a Node import and an extension import', () => {
  const probe = reach(join(root, 'src', 'extension', 'format.ts'));
  assert.ok([...probe.keys()].some((f) => f.includes(`${join('src', 'extension')}`)));
  const node = [...reach(join(root, 'src', 'core', 'compress', 'plan.ts')).values()].flat();
  assert.ok(node.includes('node:crypto'), 'plan.ts imports node:crypto');
});
