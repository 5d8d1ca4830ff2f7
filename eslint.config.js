// Lint configuration (run by `npm test` and `npm run lint`): typescript-eslint's recommended rules for the
// TypeScript sources and tests, ESLint's for the JavaScript ones.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'vendor/*/build/**', 'vendor/*/dist/**', 'vendor/*/node_modules/**', 'bench/results/**', 'test/fixtures/**', 'tmp/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', performance: 'readonly', URL: 'readonly', SharedArrayBuffer: 'readonly', Atomics: 'readonly', structuredClone: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', AbortController: 'readonly', queueMicrotask: 'readonly' },
    },
    rules: {
      // Unused arguments named _x document a signature; everything else unused is an error.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Renderer snapshots and fixtures are typed `any` on purpose where a file's snapshot type is erased.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.cjs', 'vendor/fuse-native/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', __filename: 'readonly', exports: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // fuse-native's own code keeps upstream's style where lxcfs-ts did not change it (PATCHES.md).
    files: ['vendor/fuse-native/index.js'],
    rules: { '@typescript-eslint/no-this-alias': 'off', '@typescript-eslint/no-unused-vars': 'off', 'no-empty': 'off' },
  },
  {
    // bench scripts run with --expose-gc
    files: ['bench/**/*.mjs'],
    languageOptions: { globals: { gc: 'readonly' } },
  },
);
