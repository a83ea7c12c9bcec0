import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { createDatabase } from '../db/client.js';
import { parseEnv, processEnv, type Env } from '../lib/config/env.js';
import { ConfigError } from '../lib/errors.js';
import { runningLocalStack } from '../local/instance.js';
import { verifyAuditChain } from '../services/reveal-api/audit/reader.js';

const auditVerifyEnvSchema = z.object({
  /** Unset: the database of the `npm start` running from TOKENVAULT_DATA_DIR (as `npm run token` finds its key there). */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// or postgresql:// connection URL' }).optional(),
  TOKENVAULT_DATA_DIR: z.string().min(1).default('.data'),
  /** Reads as the auditor role by default: it can read audit_log and nothing else. */
  DATABASE_ROLE: z.string().regex(/^[a-z_][a-z0-9_]*$/, { message: 'expected a PostgreSQL role name' }).default('auditor'),
});

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * `npm run audit:verify`: recomputes the whole hash chain of audit_log. Exit code 0 when
 * intact, 1 when broken (the first broken seq is printed), 2 when it could not be checked.
 */
export async function runAuditVerify(env: Env, output: Output = { out: console.log, err: console.error }): Promise<number> {
  let config: z.infer<typeof auditVerifyEnvSchema>;
  try {
    config = parseEnv(auditVerifyEnvSchema, env);
  } catch (error) {
    output.err(error instanceof ConfigError ? error.message : String(error));
    return 2;
  }
  const url = config.DATABASE_URL ?? (await runningLocalStack(config.TOKENVAULT_DATA_DIR))?.databaseUrl;
  if (url === undefined) {
    output.err(`DATABASE_URL is not set and no npm start runs from this directory (${config.TOKENVAULT_DATA_DIR}): set DATABASE_URL or start the local stack`);
    return 2;
  }
  const database = createDatabase({ url, role: config.DATABASE_ROLE, poolSize: 1 }, { applicationName: 'tokenvault-audit-verify' });
  try {
    const verdict = await verifyAuditChain(database.pool);
    if (verdict.ok) {
      const head = verdict.head === undefined ? 'empty log' : `head seq ${verdict.head.seq} hash ${verdict.head.hash}`;
      output.out(`audit log intact: ${verdict.checked} rows checked (${head})`);
      return 0;
    }
    output.out(`audit log BROKEN at seq ${verdict.firstBrokenSeq}: ${verdict.reason} (${verdict.checked} rows verified before it)`);
    return 1;
  } catch (error) {
    output.err(`audit log could not be verified: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  } finally {
    await database.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runAuditVerify(processEnv());
}
