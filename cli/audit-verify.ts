import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { openDatabase } from '../lib/runtime/database.js';
import { publicKeyFromPem } from '../lib/audit/checkpoint.js';
import { ExportFormatError, readExportFile } from '../lib/audit/export-format.js';
import { OfflineInputError, readVerifierKeys, verifyEntryOffline, verifyOffline } from '../lib/audit/offline.js';
import { CheckpointedLogVerifier, describeVerdict, type AuditVerdict } from '../lib/audit/checkpointed-log-verifier.js';
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
  npm run audit:verify -- --export FILE [--checkpoints FILE] --public-key FILE [options]   offline: no database, no secret
  npm run audit:verify [-- --checkpoints FILE] [--public-key FILE] [options]              the database at DATABASE_URL
  npm run audit:verify -- --entry FILE --checkpoints FILE --public-key FILE [options]     one entry: its receipt (GET /audit/entries/{seq})
options:
  --origin NAME            only accept checkpoints of this log (AUDIT_LOG_ORIGIN)
  --log-key FILE           another verifier key (vkey) of the log, e.g. its Ed25519 key (repeatable)
  --witness-key FILE       a witness's verifier key (vkey): its cosignatures are checked (repeatable)
  --witness-quorum K       every checkpoint needs cosignatures of K of those witnesses (or a later cosigned one that extends it)
  --clock-skew-seconds N   offline: tolerance between the service's clock and the exporter's (default 300)
exit codes: 0 intact, 1 tampering found (every finding is listed), 2 usage or input error, or nothing signed to check an entry against yet`;

interface VerifyArgs {
  export?: string | undefined;
  entry?: string | undefined;
  checkpoints?: string | undefined;
  'public-key'?: string | undefined;
  origin?: string | undefined;
  'log-key'?: string[] | undefined;
  'witness-key'?: string[] | undefined;
  'witness-quorum'?: string | undefined;
  'clock-skew-seconds'?: string | undefined;
}

/**
 * `npm run audit:verify`: checks the audit log's hash chain, its Merkle tree and its signed
 * checkpoints. Offline (`--export`) it needs only files and the public key; otherwise it reads the
 * database (as the auditor role) and its stored checkpoints, or the published ones given with
 * `--checkpoints`. Exit code 0 when intact, 1 when tampering was found (every finding listed),
 * 2 when it could not be checked.
 */
export async function runAuditVerify(env: Env, output: Output = { out: console.log, err: console.error }, argv: string[] = []): Promise<number> {
  let args: VerifyArgs;
  let quorum: number | undefined;
  let clockSkewSeconds: number | undefined;
  try {
    args = parseArgs({
      args: argv,
      options: {
        export: { type: 'string' },
        entry: { type: 'string' },
        checkpoints: { type: 'string' },
        'public-key': { type: 'string' },
        origin: { type: 'string' },
        'log-key': { type: 'string', multiple: true },
        'witness-key': { type: 'string', multiple: true },
        'witness-quorum': { type: 'string' },
        'clock-skew-seconds': { type: 'string' },
      },
    }).values;
    quorum = optionalCount(args['witness-quorum'], '--witness-quorum');
    clockSkewSeconds = optionalCount(args['clock-skew-seconds'], '--clock-skew-seconds');
  } catch (error) {
    output.err(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  // What an offline check trusts: the published checkpoints, the log's keys, the witnesses and their quorum.
  const trust = (publicKeyFile: string) => ({
    checkpointsFile: args.checkpoints,
    publicKeyFile,
    logKeyFiles: args['log-key'],
    witnessKeyFiles: args['witness-key'],
    quorum,
    origin: args.origin,
  });
  try {
    if (args.entry !== undefined) {
      if (args['public-key'] === undefined) {
        output.err(`--public-key is required: the entry's checkpoint must be signed by the log's key\n${USAGE}`);
        return 2;
      }
      const verdict = await verifyEntryOffline({ entryFile: args.entry, ...trust(args['public-key']) });
      (verdict.status === 'intact' ? output.out : output.err)(verdict.message);
      return verdict.status === 'intact' ? 0 : verdict.status === 'broken' ? 1 : 2;
    }
    if (args.export !== undefined) {
      if (args['public-key'] === undefined) {
        output.err(`--public-key is required offline: without it a recomputed chain with forged checkpoints would pass\n${USAGE}`);
        return 2;
      }
      const { verdict, checkpointSource } = await verifyOffline({ exportFile: args.export, ...trust(args['public-key']), clockSkewSeconds });
      return report(verdict, output, `checkpoints from ${checkpointSource}`);
    }
    return await verifyDatabase(env, args, quorum, output);
  } catch (error) {
    if (error instanceof ExportFormatError || error instanceof ConfigError || error instanceof OfflineInputError) output.err(`audit log could not be verified: ${error.message}`);
    else if ((error as NodeJS.ErrnoException).code === 'ENOENT') output.err(`audit log could not be verified: ${(error as NodeJS.ErrnoException).path ?? 'a file'} does not exist`);
    else output.err(`audit log could not be verified: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
}

function optionalCount(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,6}$/.test(value)) throw new Error(`${option}: expected a whole number`);
  return Number(value);
}

async function verifyDatabase(env: Env, args: VerifyArgs, quorum: number | undefined, output: Output): Promise<number> {
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
  const keys = await readVerifierKeys({ logKeyFiles: args['log-key'], witnessKeyFiles: args['witness-key'], quorum });
  const verifier = new CheckpointedLogVerifier({ publicKey, origin: args.origin, mode: 'live', ...keys, quorum });
  const database = await openDatabase({ url, role: config.DATABASE_ROLE, poolSize: 1 }, { applicationName: 'tokenvault-audit-verify' });
  let source = args.checkpoints ?? 'the database (its owner could remove the newest ones: pass the published file with --checkpoints)';
  try {
    if (args.checkpoints !== undefined) {
      try {
        for await (const line of readExportFile(args.checkpoints)) if (line.type === 'checkpoint') verifier.addCheckpoint(line.record);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        source = `${args.checkpoints}, which does not exist yet: no signed checkpoint yet`;
      }
    } else {
      for await (const record of readStoredCheckpoints(database.pool)) verifier.addCheckpoint(record);
    }
    for await (const page of readAuditRows(database.pool)) for (const row of page) verifier.pushRow(row);
  } finally {
    await database.close();
  }
  return report(verifier.verdict(), output, `checkpoints from ${source}`);
}

function report(verdict: AuditVerdict, output: Output, source: string): number {
  const [first = '', ...rest] = describeVerdict(verdict).split('\n');
  output.out(verdict.ok ? `${first} [${source}]` : first);
  for (const line of rest) output.out(line);
  return verdict.ok ? 0 : 1;
}

if (isEntryPoint(import.meta.url)) runMain('audit:verify', () => runAuditVerify(processEnv(), undefined, process.argv.slice(2)));
