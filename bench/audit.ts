/**
 * npm run bench:audit [-- --rows 1000000 --baseline-rows 100000]
 *
 * Export and offline verification of the audit log at scale, in flat memory. Starts its own
 * embedded PostgreSQL, seeds a valid hash chain of --rows rows (one token each, like reveals)
 * with a signed checkpoint every 10,000 rows, then in fresh child processes: exports it
 * (npm run audit:export) and verifies the export offline (npm run audit:verify -- --export).
 * The same is done first for --baseline-rows rows: flat memory means the peak RSS of the two
 * runs is about the same although the row counts differ tenfold.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDatabase, type Database } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { CHECKPOINT_FORMAT, checkpointBytes, checkpointDigest, keyIdOf, type CheckpointBody } from '../lib/audit/checkpoint.js';
import { LocalAuditSigner } from '../lib/keys/local-audit-signer.js';
import { startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { chainHash, type AuditContent } from '../lib/audit/chain.js';
import { printTable } from './table.js';
import { runBenchmark } from './run.js';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, 'baseline-rows': { type: 'string', default: '100000' } } });
const log = (line: string) => process.stderr.write(`${line}\n`);
const cleanups: (() => Promise<unknown>)[] = [];

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-bench-audit-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await chmod(dir, 0o755);
  const postgres = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-bench-pg-' });
  cleanups.unshift(() => postgres.stop());
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signer = LocalAuditSigner.fromKey(privateKey);
  const publicKeyFile = join(dir, 'public.pem');
  await writeFile(publicKeyFile, signer.publicKeyPem);

  const table: string[][] = [];
  for (const rows of [Number(args['baseline-rows']), Number(args.rows)]) {
    const database = `bench_${rows}`;
    const admin = createDatabase({ url: postgres.url, role: undefined, poolSize: 1 });
    await admin.pool.query(`CREATE DATABASE ${database}`);
    await admin.close();
    const url = postgres.adminUrl(database);
    const owner = createDatabase({ url, role: undefined, poolSize: 2 });
    await runMigrations(owner);
    log(`seeding ${rows} chained audit rows…`);
    const seeded = await seed(owner, rows, signer, keyIdOf(publicKey));
    await owner.close();
    const exportFile = join(dir, `export-${rows}.ndjson`);
    log(`exporting ${rows} rows…`);
    const exported = await measure({ kind: 'export', databaseUrl: url, exportFile, publicKeyFile });
    const size = (await stat(exportFile)).size;
    log(`verifying the export offline…`);
    const verified = await measure({ kind: 'verify', databaseUrl: url, exportFile, publicKeyFile });
    if (verified.code !== 0) throw new Error(`verification failed: ${verified.output}`);
    table.push([
      String(rows),
      String(seeded.checkpoints),
      `${(size / 1024 / 1024).toFixed(0)} MiB`,
      `${Math.round(rows / exported.seconds)}`,
      `${exported.maxRssMiB.toFixed(0)}`,
      `${Math.round(rows / verified.seconds)}`,
      `${verified.maxRssMiB.toFixed(0)}`,
    ]);
    await rm(exportFile, { force: true });
  }
  printTable(['rows', 'checkpoints', 'export size', 'export rows/s', 'export peak RSS MiB', 'verify rows/s', 'verify peak RSS MiB'], table);
  console.log('\nEach figure from a fresh child process (peak RSS = getrusage maxrss, includes the Node.js runtime and tsx).');
}

/** A valid chain of reveal-like rows with a signed checkpoint every 10,000 rows, inserted in batches. */
async function seed(owner: Database, count: number, signer: LocalAuditSigner, keyId: string): Promise<{ checkpoints: number }> {
  let prev: Buffer | null = null;
  let previousCheckpoint: CheckpointBody | undefined;
  let checkpoints = 0;
  const start = Date.parse('2026-01-01T00:00:00Z');
  for (let from = 1; from <= count; from += 5000) {
    const batch = [];
    for (let seq = from; seq < Math.min(from + 5000, count + 1); seq += 1) {
      const content: AuditContent = {
        seq,
        occurredAt: new Date(start + seq * 10).toISOString(),
        action: 'reveal',
        actor: `investigator-${seq % 50}`,
        roles: ['investigator'],
        clientAddress: '10.0.0.1',
        requestId: `req-${seq}`,
        purpose: 'fraud investigation case 4711',
        ticket: 'FRAUD-1',
        tokens: [`ip_v1_${String(seq).padStart(43, 'A')}`],
        fieldCounts: { ip: 1 },
        outcome: 'allowed',
        reason: null,
        prevHash: prev,
      };
      const hash = chainHash(content);
      batch.push({ ...content, prevHash: prev?.toString('hex') ?? null, hash: hash.toString('hex') });
      prev = hash;
      if (seq % 10_000 === 0 || seq === count) {
        checkpoints += 1;
        const body: CheckpointBody = {
          format: CHECKPOINT_FORMAT,
          origin: 'bench/audit',
          index: checkpoints,
          seq,
          head_hash: hash.toString('hex'),
          row_count: seq,
          time: new Date(start + seq * 10).toISOString(),
          prev_digest: previousCheckpoint === undefined ? null : checkpointDigest(previousCheckpoint),
          key_id: keyId,
          signer: signer.label,
        };
        const bytes = checkpointBytes(body);
        await owner.pool.query('INSERT INTO audit_checkpoints (idx, seq, body, signature) VALUES ($1, $2, $3, $4)', [checkpoints, seq, bytes.toString('utf8'), await signer.sign(bytes)]);
        previousCheckpoint = body;
      }
    }
    await owner.pool.query(
      `INSERT INTO audit_log (seq, occurred_at, action, actor, roles, client_address, request_id, purpose, ticket, tokens, field_counts, outcome, reason, prev_hash, hash)
       SELECT r."seq", r."occurredAt"::timestamptz, r."action", r."actor", r."roles", r."clientAddress", r."requestId", r."purpose", r."ticket", r."tokens",
              r."fieldCounts", r."outcome", r."reason", decode(r."prevHash", 'hex'), decode(r."hash", 'hex')
       FROM jsonb_to_recordset($1::jsonb) AS r("seq" bigint, "occurredAt" text, "action" text, "actor" text, "roles" text[], "clientAddress" text,
            "requestId" text, "purpose" text, "ticket" text, "tokens" text[], "fieldCounts" jsonb, "outcome" text, "reason" text, "prevHash" text, "hash" text)`,
      [JSON.stringify(batch)],
    );
    if (from % 100_000 === 1 && from > 1) log(`  ${from - 1} rows`);
  }
  return { checkpoints };
}

interface Measurement {
  code: number;
  seconds: number;
  maxRssMiB: number;
  output: string;
}

function measure(job: { kind: 'export' | 'verify'; databaseUrl: string; exportFile: string; publicKeyFile: string }): Promise<Measurement> {
  const child = fork(fileURLToPath(new URL('./audit/measure.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.on('message', (message: 'ready' | Measurement) => {
      if (message === 'ready') child.send(job);
      else resolve(message);
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`measurement process exited with ${code}`))));
  });
}

await runBenchmark(main, cleanups, log);
