// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.data/**', 'coverage/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      // Configuration is read once, in lib/config; everything else gets a typed object.
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read settings through lib/config only.' }],
    },
  },
  {
    files: ['lib/config/**', 'test/**', 'bench/**', 'eslint.config.js', 'vitest.config.ts', 'drizzle.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  // The layers: db ← lib ← services ← cli, local, bench (each imports only from the layers to its
  // left), and the outer three reach a service through its public face, services/<name>/index.ts.
  ...layers(),
);

/**
 * One `no-restricted-imports` block per layer (a later block for the same files would replace,
 * not add to, an earlier one, so the file sets do not overlap). Imports are relative paths, so
 * each pattern is a regular expression over `../`-prefixed paths into the top-level directories.
 * Type-only imports count too: a type from a service's inside is still its inside.
 */
function layers() {
  const SERVICES = ['ingestor', 'reveal-api', 'witness'];
  /** @param {string[]} directories */
  const into = (directories) => `^(\\.\\./)+(${directories.join('|')})(/|$)`;
  /** @param {{ regex: string; message: string }[]} patterns */
  const rule = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });
  return [
    {
      files: ['db/**/*.ts'],
      rules: rule([{ regex: into(['lib', 'services', 'cli', 'local', 'bench']), message: 'db/ is the bottom layer: it imports nothing of lib/, services/, cli/, local/ or bench/.' }]),
    },
    {
      files: ['lib/**/*.ts'],
      rules: rule([{ regex: into(['services', 'cli', 'local', 'bench']), message: 'lib/ imports only db/ and lib/: services, cli, local and bench build on it, not the other way round.' }]),
    },
    ...SERVICES.map((service) => ({
      files: [`services/${service}/**/*.ts`],
      rules: rule([
        {
          regex: into(SERVICES.filter((other) => other !== service)),
          message: 'Services never import each other: share through lib/, or talk over the wire.',
        },
        { regex: into(['services', 'cli', 'local', 'bench']), message: 'A service imports only db/, lib/ and its own directory, never cli/, local/ or bench/.' },
      ]),
    })),
    {
      files: ['cli/**/*.ts', 'local/**/*.ts'],
      rules: rule([outerFace()]),
    },
    {
      files: ['bench/**/*.ts'],
      rules: rule([outerFace(), { regex: into(['cli']), message: 'bench/ measures lib/ and the services, not the CLI: import what the CLI calls (lib/).' }]),
    },
  ];
}

/** cli/, local/ and bench/ import a service only through its index.ts. */
function outerFace() {
  return {
    regex: '^(\\.\\./)+services/[^/]+/(?!index\\.js$)',
    message: "Import a service through its public face, services/<name>/index.js; what it does not export is the service's own.",
  };
}
