import { z } from 'zod';
import { runningLocalStack } from '../local/instance.js';

/**
 * The settings of a CLI that reads the database: DATABASE_URL, or — unset — the database of the
 * `npm start` running from TOKENVAULT_DATA_DIR (as `npm run token` finds its key there).
 */
export const cliDatabaseEnvSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// or postgresql:// connection URL' }).optional(),
  TOKENVAULT_DATA_DIR: z.string().min(1).default('.data'),
  /** Reads as the auditor role by default: it can read audit_log and nothing else. */
  DATABASE_ROLE: z.string().regex(/^[a-z_][a-z0-9_]*$/, { message: 'expected a PostgreSQL role name' }).default('auditor'),
});

export type CliDatabaseEnv = z.infer<typeof cliDatabaseEnvSchema>;

/** The URL to use, or a sentence saying why there is none and what to do. */
export async function cliDatabaseUrl(config: CliDatabaseEnv): Promise<{ url: string } | { missing: string }> {
  const url = config.DATABASE_URL ?? (await runningLocalStack(config.TOKENVAULT_DATA_DIR))?.databaseUrl;
  if (url !== undefined) return { url };
  return { missing: `DATABASE_URL is not set and no npm start runs from this directory (${config.TOKENVAULT_DATA_DIR}): set DATABASE_URL or start the local stack` };
}
