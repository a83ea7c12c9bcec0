import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console: a static single-page app built into dist/console, which the reveal-api
 * serves under /console/. No inline script or style ends up in the output (strict CSP).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // Inlined assets would be data: URLs; keep everything a file under 'self'.
    assetsInlineLimit: 0,
    sourcemap: true,
    target: 'es2022',
  },
  logLevel: 'warn',
});
