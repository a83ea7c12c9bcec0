/**
 * npm run bench:audit [-- --sections export,appends --rows 1000000 --baseline-rows 100000
 *                        --replicas 1,2,4 --append-seconds 10 --append-concurrency 32 --append-tokens 1 --append-pool 4
 *                        --append-rounds 3]
 *
 * Section `appends` (issue 17, requirement 8): audit appends per second with 1, 2 and 4
 * reveal-api replicas on one database, same run. Each replica is a process of its own with its
 * own pool and the reveal-api's AuditWriter (group commit under the global chain lock), driven
 * by --append-concurrency loops (concurrent requests) appending reveal-like entries of
 * --append-tokens tokens for --append-seconds. Each replica count runs twice, with the Merkle
 * tree (leaf and nodes in each row's transaction) and without (rows only, as before issue 17);
 * the tree is caught up, untimed, after each run without it. No HTTP: this is the ceiling of
 * the audit log itself, which every audited request goes through. Each pair runs
 * --append-rounds times, the order alternating; the table shows the median of each side and
 * the median of the per-round ratios (the machine's load drifts; a ratio within a round does not).
 *
 * Section `export`:
 * Export and offline verification of the audit log at scale, in flat memory. Starts its own
 * embedded PostgreSQL, seeds a valid hash chain of --rows rows (one token each, like reveals)
 * with a signed checkpoint every 10,000 rows, then in fresh child processes: exports it and
 * verifies the export offline, with what npm run audit:export and audit:verify -- --export run
 * (lib/audit: exportLines, verifyOffline; bench/audit/measure.ts).
 * The same is done first for --baseline-rows rows: flat memory means the peak RSS of the two
 * runs is about the same although the row counts differ tenfold.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createDatabase, type Database } from '../db/client.js';
import { migrate } from '../lib/runtime/migrate.js';
import { CHECKPOINT_FORMAT, checkpointBytes, checkpointDigest, keyIdOf, type CheckpointBody } from '../lib/audit/checkpoint.js';
import { LocalAuditSigner } from '../lib/keys/local-audit-signer.js';
import { startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { chainHash, type AuditContent } from '../lib/audit/chain.js';
import { backfillAuditTree } from '../lib/audit/tree-backfill.js';
import type { AppendJob, AppendResult } from './audit/appender.js';
import { printTable } from './table.js';
import { runBenchmark } from './run.js';

const { values: args } = parseArgs({
  options: {
    sections: { type: 'string', default: 'export,appends' },
    rows: { type: 'string', default: '1000000' },
    'baseline-rows': { type: 'string', default: '100000' },
    replicas: { type: 'string', default: '1,2,4' },
    'append-seconds': { type: 'string', default: '10' },
    'append-concurrency': { type: 'string', default: '32' },
    'append-tokens': { type: 'string', default: '1' },
    'append-pool': { type: 'string', default: '4' },
    'append-rounds': { type: 'string', default: '3' },
  },
});
const sections = new Set(args.sections.split(','));
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

  if (sections.has('appends')) await appendsPerSecond(postgres);
  if (!sections.has('export')) return;

  const table: string[][] = [];
  for (const rows of [Number(args['baseline-rows']), Number(args.rows)]) {
    const database = `bench_${rows}`;
    const admin = createDatabase({ url: postgres.url, role: undefined, poolSize: 1 });
    await admin.pool.query(`CREATE DATABASE ${database}`);
    await admin.close();
    const url = postgres.adminUrl(database);
    const owner = createDatabase({ url, role: undefined, poolSize: 2 });
    await migrate(owner);
    log(`seeding ${rows} chained audit rows…`);
    const seeded = await seed(owner, rows, signer, keyIdOf(publicKey));
    // What `npm run db:migrate` does for a log from before migration 0011: the Merkle tree over every row.
    log(`building the Merkle tree over ${rows} rows (the migration backfill)…`);
    const backfillStarted = performance.now();
    await backfillAuditTree(owner.pool, { batchRows: 5_000, lockTimeoutMs: 60_000 });
    const backfillSeconds = (performance.now() - backfillStarted) / 1000;
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
      `${Math.round(rows / backfillSeconds)}`,
    ]);
    await rm(exportFile, { force: true });
  }
  printTable(['rows', 'checkpoints', 'export size', 'export rows/s', 'export peak RSS MiB', 'verify rows/s', 'verify peak RSS MiB', 'tree backfill rows/s'], table);
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

/** Appends per second with 1, 2, 4… replica processes on one database, with and without the Merkle tree. */
async function appendsPerSecond(postgres: Awaited<ReturnType<typeof startEmbeddedPostgres>>): Promise<void> {
  const admin = createDatabase({ url: postgres.url, role: undefined, poolSize: 1 });
  await admin.pool.query('CREATE DATABASE bench_appends');
  await admin.close();
  const url = postgres.adminUrl('bench_appends');
  const owner = createDatabase({ url, role: undefined, poolSize: 2 });
  try {
    await migrate(owner);
    const seconds = Number(args['append-seconds']);
    const job = { databaseUrl: url, poolSize: Number(args['append-pool']), concurrency: Number(args['append-concurrency']), seconds, tokens: Number(args['append-tokens']) };
    const loadBefore = loadavg();
    const table: string[][] = [];
    const rounds = Math.max(1, Number(args['append-rounds']));
    let pair = 0;
    for (const replicas of args.replicas.split(',').map(Number)) {
      const runs: { tree: ReplicaRun; rows: ReplicaRun }[] = [];
      for (let round = 0; round < rounds; round += 1) {
        const measured = new Map<boolean, ReplicaRun>();
        // Alternate which mode goes first: drift hits both sides alike.
        for (const treeNodes of pair % 2 === 0 ? [true, false] : [false, true]) {
          log(`appends: ${replicas} replica(s), round ${round + 1}/${rounds}, ${job.concurrency} loops each, ${job.tokens} token(s) per entry, ${treeNodes ? 'with' : 'without'} the Merkle tree, ${seconds}s…`);
          measured.set(treeNodes, await runReplicas(replicas, { ...job, treeNodes }));
          if (!treeNodes) await backfillAuditTree(owner.pool, { batchRows: 5_000, lockTimeoutMs: 60_000 });
        }
        pair += 1;
        runs.push({ tree: measured.get(true)!, rows: measured.get(false)! });
        log(`  → ${fmt(runs.at(-1)!.tree.perSecond, 0)} with the tree, ${fmt(runs.at(-1)!.rows.perSecond, 0)} rows only`);
      }
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
      const side = (pick: (run: { tree: ReplicaRun; rows: ReplicaRun }) => number) => median(runs.map(pick));
      table.push([
        String(replicas),
        fmt(side((run) => run.tree.perSecond), 0),
        fmt(side((run) => run.rows.perSecond), 0),
        `${fmt(side((run) => run.tree.perSecond / run.rows.perSecond), 2)}×`,
        fmt(side((run) => run.tree.rowsPerCommit), 1),
        `${fmt(side((run) => run.tree.p50), 1)} / ${fmt(side((run) => run.tree.p99), 1)}`,
        `${fmt(side((run) => run.rows.p50), 1)} / ${fmt(side((run) => run.rows.p99), 1)}`,
        String(runs.reduce((sum, run) => sum + run.tree.errors + run.rows.errors, 0)),
      ]);
    }
    const nodes = await owner.pool.query<{ rows: string; nodes: string }>('SELECT (SELECT count(*) FROM audit_log) AS rows, (SELECT count(*) FROM audit_tree_nodes) AS nodes');
    printTable(
      ['replicas', 'appends/s (tree)', 'appends/s (rows only)', 'tree ÷ rows only', 'rows/commit', 'latency p50/p99 ms (tree)', 'p50/p99 ms (rows only)', 'errors'],
      table,
    );
    console.log(
      `\nEach replica: a process with its own pool (${job.poolSize}) and AuditWriter, ${job.concurrency} concurrent appenders, ${job.tokens} token(s) per entry, ${seconds}s per run, ${rounds} round(s) per pair (medians); one embedded PostgreSQL on the same machine.` +
        `\nAfter the runs: ${nodes.rows[0]?.rows} audit rows, ${nodes.rows[0]?.nodes} Merkle nodes (the tree caught up after each run without it).` +
        `\nLoad average (1/5/15 min) before: ${loadBefore.map((value) => fmt(value, 2)).join(' ')}; after: ${loadavg().map((value) => fmt(value, 2)).join(' ')}.\n`,
    );
  } finally {
    await owner.close();
  }
}

interface ReplicaRun {
  perSecond: number;
  rowsPerCommit: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Forks `replicas` appender processes, starts them together, and sums what they committed. */
async function runReplicas(replicas: number, job: Omit<AppendJob, 'replica'>): Promise<ReplicaRun> {
  const children = Array.from({ length: replicas }, () =>
    fork(fileURLToPath(new URL('./audit/appender.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  // A replica that dies fails the run instead of leaving it waiting. (A clean exit comes after its
  // report was sent: 'exit' may be emitted before that message is read, so it is not a failure.)
  const exited = children.map(
    (child, replica) =>
      new Promise<never>((_resolve, reject) => {
        child.once('exit', (code, signal) => {
          if (code !== 0) reject(new Error(`replica ${replica} exited (${code ?? signal}) before reporting`));
        });
      }),
  );
  for (const promise of exited) promise.catch(() => undefined);
  const next = (child: (typeof children)[number]) =>
    Promise.race([
      new Promise<unknown>((resolve, reject) => {
        child.once('message', resolve);
        child.once('error', reject);
      }),
      exited[children.indexOf(child)]!,
    ]);
  await Promise.all(children.map((child) => next(child)));
  const ready = children.map((child) => next(child));
  children.forEach((child, replica) => child.send({ ...job, replica } satisfies AppendJob));
  await Promise.all(ready);
  const results = children.map((child) => next(child) as Promise<AppendResult>);
  for (const child of children) child.send('go');
  const done = await Promise.all(results);
  const appends = done.reduce((sum, result) => sum + result.appends, 0);
  const seconds = done.reduce((sum, result) => sum + result.seconds, 0) / done.length;
  const latencies = done.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0;
  return {
    perSecond: appends / seconds,
    rowsPerCommit: appends / Math.max(1, done.reduce((sum, result) => sum + result.batches, 0)),
    p50: at(0.5),
    p99: at(0.99),
    errors: done.reduce((sum, result) => sum + result.errors, 0),
  };
}

function fmt(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '∞';
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
