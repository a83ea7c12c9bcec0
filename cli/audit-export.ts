import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cliDatabaseEnvSchema, cliDatabaseUrl, type CliDatabaseEnv } from './database-url.js';
import { openDatabase } from '../lib/runtime/database.js';
import { parseEnv, processEnv, type Env } from '../lib/config/env.js';
import { ConfigError } from '../lib/errors.js';
import { exportLines } from '../lib/audit/reader.js';
import type { Output } from './audit-verify.js';

const USAGE = 'usage: npm run audit:export -- --out FILE [--after-seq N] [--rows-per-second N]   (FILE "-" writes to standard output; 0: unpaced)';

/**
 * `npm run audit:export -- --out FILE`: the audit log as NDJSON (rows, then checkpoints) for
 * the offline verifier, streamed page by page. Reads DATABASE_URL or, unset, the running
 * `npm start`'s database, as the auditor role by default.
 * Exit 0 when written, 2 when it could not be.
 */
export async function runAuditExport(argv: string[], env: Env, output: Output = { out: console.log, err: console.error }): Promise<number> {
  let out: string;
  let afterSeq: number;
  let rowsPerSecond: number;
  let config: CliDatabaseEnv;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, 'after-seq': { type: 'string', default: '0' }, 'rows-per-second': { type: 'string', default: '0' } },
    });
    if (values.out === undefined) throw new ConfigError(`--out is required\n${USAGE}`, []);
    if (!/^[0-9]{1,15}$/.test(values['after-seq'])) throw new ConfigError(`--after-seq: expected a seq number\n${USAGE}`, []);
    if (!/^[0-9]{1,9}$/.test(values['rows-per-second'])) throw new ConfigError(`--rows-per-second: expected a number of rows (0: unpaced)\n${USAGE}`, []);
    rowsPerSecond = Number(values['rows-per-second']);
    out = values.out;
    afterSeq = Number(values['after-seq']);
    config = parseEnv(cliDatabaseEnvSchema, env);
  } catch (error) {
    output.err(error instanceof Error ? error.message : String(error));
    return 2;
  }
  const target = await cliDatabaseUrl(config);
  if ('missing' in target) {
    output.err(target.missing);
    return 2;
  }
  const database = await openDatabase({ url: target.url, role: config.DATABASE_ROLE, poolSize: 1 }, { applicationName: 'tokenvault-audit-export' });
  try {
    let rows = 0;
    let checkpoints = 0;
    const counted = async function* () {
      // Paced exports (the reveal-api's) read small pages: the database sees a steady trickle, not bursts.
      for await (const chunk of exportLines(database.pool, afterSeq, rowsPerSecond > 0 ? { rowsPerSecond, pageSize: Math.max(100, Math.min(1000, Math.ceil(rowsPerSecond / 5))) } : {})) {
        if (chunk.startsWith('{"type":"row"')) rows += chunk.split('\n').length - 1;
        else if (!chunk.includes('"type":"export_start"')) checkpoints += 1;
        yield chunk;
      }
    };
    const target = out === '-' ? process.stdout : createWriteStream(out, { mode: 0o640 });
    // One page in flight at a time: a slow reader (a pipe to the reveal-api, a slow disk) pauses the reads.
    await pipeline(Readable.from(counted(), { highWaterMark: 1 }), target, { end: out !== '-' });
    if (out !== '-') output.err(`exported ${rows} rows and ${checkpoints} checkpoints to ${out}`);
    return 0;
  } catch (error) {
    output.err(`audit log could not be exported: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  } finally {
    await database.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runAuditExport(process.argv.slice(2), processEnv());
}
