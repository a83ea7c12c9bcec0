import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { localEnvSchema } from '../local/config.js';
import { rotationEnvSchema } from '../lib/keys/rotation/config.js';
import { maintenanceEnvSchema } from '../lib/lifecycle/config.js';
import { ingestorEnvSchema } from '../services/ingestor/config.js';
import { revealEnvSchema } from '../services/reveal-api/config.js';
import { witnessEnvSchema } from '../services/witness/config.js';

const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
const documented = new Set([...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((match) => match[1]));

describe('README', () => {
  it.each([
    ['ingestor', ingestorEnvSchema],
    ['reveal-api', revealEnvSchema],
    ['npm start', localEnvSchema],
    ['key rotation', rotationEnvSchema],
    ['maintenance', maintenanceEnvSchema],
    ['witness', witnessEnvSchema],
  ] as Array<[string, z.ZodObject]>)('documents every setting of the %s in its settings table', (_name, schema) => {
    const missing = Object.keys(schema.shape).filter((key) => !documented.has(key));
    expect(missing).toEqual([]);
  });

  it('names the two commands that run and test the project on a bare machine', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });
});
