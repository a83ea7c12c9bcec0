import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);

/**
 * The witness's public face. It is a second party (its own process, key and data directory), so
 * outer code starts its entry point rather than importing its parts: `npm run witness`, or the
 * local stack spawning this file (local/witness.ts). The rest of this directory is private.
 * main.ts from source (tsx), main.js from the build.
 */
export const WITNESS_MAIN = fileURLToPath(new URL(`./main${extname(HERE)}`, import.meta.url));
