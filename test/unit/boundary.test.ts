// DESIGN.md's boundary rule: only src/extension may import 'vscode'; the core runs in plain Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : /\.(ts|js|mjs|cjs)$/.test(n) ? [p] : [];
  });
}

const importsVscode = /(from\s+['"]vscode['"]|require\(\s*['"]vscode['"]\s*\)|import\(\s*['"]vscode['"]\s*\))/;

const CHECKED = ['src/core', 'src/cli', 'src/worker', 'webview'];

test('every folder the boundary check reads exists (a renamed folder must not pass unchecked)', () => {
  assert.deepEqual(CHECKED.filter((d) => !existsSync(d) || sources(d).length === 0), []);
});

test('no file outside src/extension imports vscode', () => {
  const offenders = CHECKED
    .flatMap(sources)
    .filter((f) => importsVscode.test(readFileSync(f, 'utf8')));
  assert.deepEqual(offenders, []);
});

test('the boundary check itself detects an import', () => {
  assert.ok(importsVscode.test(`import * as vscode from 'vscode';`));
  assert.ok(importsVscode.test(`const v = require("vscode");`));
  assert.ok(!importsVscode.test(`import { x } from './vscodeish';`));
});
