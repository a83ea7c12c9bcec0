import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CONFIG_FILE = fileURLToPath(new URL('../console/vite.config.ts', import.meta.url));

/**
 * Builds the web console (what `npm run build:console` does) into `outDir`. Vite is a
 * development dependency: only the local stack and the tests call this; images build it
 * in their build stage.
 */
export async function buildConsole(outDir: string): Promise<void> {
  const { build } = await import('vite');
  await build({ configFile: CONFIG_FILE, build: { outDir, emptyOutDir: true }, logLevel: 'error' });
}

/** Builds the console into `dir` unless a build is already there. Returns whether it built. */
export async function ensureConsoleBuilt(dir: string): Promise<boolean> {
  if (existsSync(join(dir, 'index.html'))) return false;
  await buildConsole(dir);
  return true;
}
