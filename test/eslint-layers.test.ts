import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const eslint = new ESLint({ cwd: root });

/** The layering errors eslint.config.js reports for `source`, linted as if it were the file at `path`. */
async function layeringErrors(path: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: `${root}${path}` });
  return (result?.messages ?? []).filter((message) => message.ruleId === 'no-restricted-imports').map((message) => message.message);
}

// Virtual files at the places named: nothing is written; the real tree is linted by `npx eslint .`.
describe('eslint.config.js enforces the layers (db ← lib ← services ← cli, local, bench)', { timeout: 60_000 }, () => {
  it.each([
    ['cli/example.ts', "export { Policy } from '../services/reveal-api/policy/policy.js';", /public face/],
    ['local/example.ts', "export type { Ingestor } from '../services/ingestor/worker.js';", /public face/],
    ['bench/ingest/example.ts', "export { createSink } from '../../services/ingestor/sink.js';", /public face/],
    ['bench/audit/example.ts', "export { runAuditExport } from '../../cli/audit-export.js';", /not the CLI/],
    ['lib/keys/example.ts', "export { loadRevealConfig } from '../../services/reveal-api/index.js';", /lib\/ imports only db\/ and lib\//],
    ['lib/example.ts', "export { busyPorts } from '../local/ports.js';", /lib\/ imports only db\/ and lib\//],
    ['db/example.ts', "export { ConfigError } from '../lib/errors.js';", /bottom layer/],
    ['services/ingestor/example.ts', "export { Policy } from '../reveal-api/index.js';", /never import each other/],
    ['services/reveal-api/routes/example.ts', "export { WITNESS_MAIN } from '../../witness/index.js';", /never import each other/],
    ['services/witness/example.ts', "export { busyPorts } from '../../local/ports.js';", /never cli\/, local\/ or bench\//],
  ])('refuses %s importing %s', async (path, source, message) => {
    const errors = await layeringErrors(path, source);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
  });

  it.each([
    ['cli/example.ts', "export { Policy } from '../services/reveal-api/index.js';"],
    ['bench/ingest/example.ts', "export { createSink } from '../../services/ingestor/index.js';\nexport { startEmbeddedPostgres } from '../../local/embedded-postgres.js';"],
    ['local/example.ts', "export { WITNESS_MAIN } from '../services/witness/index.js';\nexport { openDatabase } from '../lib/runtime/database.js';"],
    ['services/reveal-api/routes/example.ts', "export { Policy } from '../policy/policy.js';\nexport { ConfigError } from '../../../lib/errors.js';\nexport type { Database } from '../../../db/client.js';"],
    ['lib/audit/example.ts', "export { ConfigError } from '../errors.js';\nexport type { Database } from '../../db/client.js';\nexport { UsageBook } from '../budget/ledger.js';"],
  ])('lets %s import %s', async (path, source) => {
    expect(await layeringErrors(path, source)).toEqual([]);
  });
});
