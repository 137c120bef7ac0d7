// The house rules, enforced (docs/DESIGN.md "Layout"): who may import whom, and tidy imports.
// Syntax-only linting (no type information), so `npm run lint` stays fast on two cores.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Import patterns that name one of our top-level parts, whatever the relative depth. */
const ours = (part) => [`**/${part}`, `**/${part}/**`];

/** One `no-restricted-imports` rule: the names and our parts a folder must not import. */
function restrict({ vscode = true, parts = [], node = false, why }) {
  const paths = vscode ? [{ name: 'vscode', message: 'Only src/extension imports vscode (DESIGN.md boundary rule).' }] : [];
  const patterns = parts.map((part) => ({ group: ours(part), message: why }));
  if (node) patterns.push({ group: ['node:*'], message: 'Webviews run in the browser: no Node built-ins.' });
  return { 'no-restricted-imports': ['error', { paths, patterns }] };
}

export default tseslint.config(
  ...tseslint.configs.recommended,
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-test/**', 'src/core/formats/onnx/gen/**', 'test-artifacts/**', 'demo-output/**', 'bench/.data/**'] },
  {
    files: ['**/*.ts', '**/*.mjs', '**/*.cjs'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2022, sourceType: 'module' },
    plugins: { 'import-x': importX, '@typescript-eslint': tseslint.plugin },
    rules: {
      'import-x/no-duplicates': 'error',
      'import-x/first': 'error',
      'import-x/order': ['error', {
        groups: ['builtin', 'external', ['internal', 'parent', 'sibling', 'index']],
        'newlines-between': 'ignore',
      }],
      // A leading underscore marks a value left unused on purpose (destructured away, a required parameter).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      ...restrict({ vscode: true }),
    },
  },
  // CommonJS files (shared by .mjs scripts and tsx-run TypeScript) load with require().
  { files: ['**/*.cjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  // The extension host and its tests are the only code that may import vscode.
  { files: ['src/extension/**', 'test/integration/**'], rules: { 'no-restricted-imports': 'off' } },
  {
    files: ['src/core/**'],
    rules: restrict({ parts: ['extension', 'cli', 'worker', 'webview'], why: 'src/core imports nothing of ours above it.' }),
  },
  {
    files: ['src/worker/**'],
    rules: restrict({ parts: ['extension', 'cli', 'webview'], why: 'The worker client depends on the core only.' }),
  },
  {
    files: ['src/cli/**'],
    rules: restrict({ parts: ['extension', 'webview'], why: 'The CLI uses the core and the worker client, never the extension.' }),
  },
  {
    files: ['webview/**'],
    rules: restrict({
      parts: ['extension', 'cli', 'worker'], node: true,
      why: 'Webviews import only webview/** and pure core code.',
    }),
  },
);
