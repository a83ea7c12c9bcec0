import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createDatabase } from '../db/client.js';
import { publicKeyFromPem } from '../lib/audit/checkpoint.js';
import { ExportFormatError, readExportFile } from '../lib/audit/export-format.js';
import { verifyOffline } from '../lib/audit/offline.js';
import { AuditLogVerifier, describeVerdict, type AuditVerdict } from '../lib/audit/verifier.js';
import { parseEnv, processEnv, type Env } from '../lib/config/env.js';
import { isEntryPoint, runMain } from '../lib/entry-point.js';
import { ConfigError } from '../lib/errors.js';
import { cliDatabaseEnvSchema, cliDatabaseUrl, type CliDatabaseEnv } from './database-url.js';
import { readAuditRows, readStoredCheckpoints } from '../lib/audit/reader.js';

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

const USAGE = `usage:
  npm run audit:verify -- --export FILE [--checkpoints FILE] --public-key FILE [--origin NAME]   offline: no database, no secret
  npm run audit:verify [-- --checkpoints FILE] [--public-key FILE]                               the database at DATABASE_URL`;

/**
 * `npm run audit:verify`: checks the audit log's hash chain and its signed checkpoints.
 * Offline (`--export`) it needs only files and the public key; otherwise it reads the database
 * (as the auditor role) and its stored checkpoints, or the published ones given with
 * `--checkpoints`. Exit code 0 when intact, 1 when broken (one line naming the first broken
 * seq or checkpoint), 2 when it could not be checked.
 */
export async function runAuditVerify(env: Env, output: Output = { out: console.log, err: console.error }, argv: string[] = []): Promise<number> {
  let args: { export?: string | undefined; checkpoints?: string | undefined; 'public-key'?: string | undefined; origin?: string | undefined };
  try {
    args = parseArgs({
      args: argv,
      options: { export: { type: 'string' }, checkpoints: { type: 'string' }, 'public-key': { type: 'string' }, origin: { type: 'string' } },
    }).values;
  } catch (error) {
    output.err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  try {
    if (args.export !== undefined) {
      if (args['public-key'] === undefined) {
        output.err(`--public-key is required offline: without it a recomputed chain with forged checkpoints would pass\n${USAGE}`);
        return 2;
      }
      const { verdict, checkpointSource } = await verifyOffline({
        exportFile: args.export,
        checkpointsFile: args.checkpoints,
        publicKeyFile: args['public-key'],
        origin: args.origin,
      });
      return report(verdict, output, `checkpoints from ${checkpointSource}`);
    }
    return await verifyDatabase(env, args, output);
  } catch (error) {
    if (error instanceof ExportFormatError || error instanceof ConfigError) output.err(`audit log could not be verified: ${error.message}`);
    else output.err(`audit log could not be verified: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
}

async function verifyDatabase(env: Env, args: { checkpoints?: string | undefined; 'public-key'?: string | undefined; origin?: string | undefined }, output: Output): Promise<number> {
  let config: CliDatabaseEnv;
  try {
    config = parseEnv(cliDatabaseEnvSchema, env);
  } catch (error) {
    output.err(error instanceof ConfigError ? `${error.message}\n(or verify an export offline: ${USAGE.split('\n')[1]?.trim()})` : String(error));
    return 2;
  }
  const target = await cliDatabaseUrl(config);
  if ('missing' in target) {
    output.err(target.missing);
    return 2;
  }
  const url = target.url;
  const publicKey = args['public-key'] === undefined ? undefined : publicKeyFromPem(await readFile(args['public-key'], 'utf8'));
  const verifier = new AuditLogVerifier({ publicKey, origin: args.origin });
  const database = createDatabase({ url, role: config.DATABASE_ROLE, poolSize: 1 }, { applicationName: 'tokenvault-audit-verify' });
  try {
    let ok = true;
    if (args.checkpoints !== undefined) {
      for await (const line of readExportFile(args.checkpoints)) {
        if (line.type === 'checkpoint' && !(ok = verifier.addCheckpoint(line.checkpoint))) break;
      }
    } else {
      for await (const checkpoint of readStoredCheckpoints(database.pool)) if (!(ok = verifier.addCheckpoint(checkpoint))) break;
    }
    if (ok) {
      rows: for await (const page of readAuditRows(database.pool)) {
        for (const row of page) if (!verifier.pushRow(row)) break rows;
      }
    }
  } finally {
    await database.close();
  }
  const source = args.checkpoints ?? 'the database (its owner could remove the newest ones: pass the published file with --checkpoints)';
  return report(verifier.verdict(), output, `checkpoints from ${source}`);
}

function report(verdict: AuditVerdict, output: Output, source: string): number {
  const line = describeVerdict(verdict);
  output.out(verdict.ok ? `${line} [${source}]` : line);
  return verdict.ok ? 0 : 1;
}

if (isEntryPoint(import.meta.url)) runMain('audit:verify', () => runAuditVerify(processEnv(), undefined, process.argv.slice(2)));
