/**
 * npm run bench:reveal [-- --duration 10 --connections 16 --light-connections 4 --rows 20000 --pool 16
 *                         --rounds 1 --checkpoint-interval 1 --audit-rows 250000
 *                         --cases baseline,reveal-1,reveal-1-checkpoints,reveal-1-budget,reveal-1-export,reveal-1-export-3,
 *                                 reveal-100,reveal-100-checkpoints,reveal-100-budget,reveal-100-light
 *                                 (not by default: reveal-1-light,reveal-1-light-export)]
 *
 * Starts its own embedded PostgreSQL (temporary directory, random port), seeds the vault,
 * starts the real reveal API on loopback (this process) and loads it from a SECOND process
 * (autocannon in a forked child). Every reveal is authenticated (ES256 JWT), authorised,
 * looked up, decrypted and audited (hash chain, committed before the answer). Cases:
 *   baseline   GET /healthz (HTTP stack only: no auth, no database, no audit)
 *   reveal-1   POST /reveal with 1 token
 *   reveal-100 POST /reveal with 100 tokens
 *   reveal-100-light the same at lower concurrency (latency when the API is not saturated)
 *   *-no-tree  the same against a second server on the same database whose audit writer stores no
 *              Merkle nodes (rows only, as before issue 17; a bench-only switch): reveal-1 and
 *              reveal-100's "vs reference" column is then the tree's cost (with ÷ without). After
 *              each such case the tree is caught up, untimed, so the next case starts complete.
 *   proof-inclusion  GET /audit/proofs/inclusion?seq=N as an auditor, N random among the rows of
 *              the newest signed checkpoint (one is signed, untimed, before the case)
 *   proof-consistency GET /audit/proofs/consistency?from=M, M random, to the newest checkpoint
 *   reveal-1-light   reveal-1 at that lower concurrency; reveal-1-light-export: with one export running
 *   *-budget   the same as another identity whose role has budgets (per minute/hour/day, never
 *              exhausted here): the charge is decided and stored in the audit row's transaction,
 *              so these rows show what enforcing budgets costs ("vs reference" column)
 *   *-export   the same while an auditor downloads GET /audit/export of an audit log seeded with
 *              --audit-rows rows (default 250,000, only when an export case runs), again and again,
 *              from a third process; *-export-3: three auditors try at once (one export runs per
 *              replica, the others are refused with 429 export_busy and retry every second)
 *   *-checkpoints the same with signed audit checkpoints written every --checkpoint-interval
 *              seconds (default 1 s, 60× the production default, so the cost shows): each round
 *              reads the stored Merkle tree's head (O(log n)), proves it extends the checkpoint
 *              published before (file read back, consistency proof), re-hashes the rows since then
 *              against their stored leaves on a worker thread, signs a C2SP note (P-256 and
 *              Ed25519), stores it and publishes it to a file ("vs reference" column: the same case
 *              without them). Issue 17's figure: --cases reveal-100,reveal-100-checkpoints
 *              --checkpoint-interval 10
 *   anonymous-flood (not in the default list) POST /reveal WITHOUT valid credentials (no
 *              Authorization header, then `Bearer garbage.garbage.garbage`, alternately) with
 *              the finding's body: 100 valid tokens, a 500-character purpose, a 128-character
 *              ticket, from --connections loops for --duration seconds, against a server with the
 *              production defaults (RATE_LIMIT_*). Counts the audit rows and the growth of
 *              audit_log (pg_total_relation_size) it leaves behind, summaries included. Issue 16's
 *              figure: npm run bench:reveal -- --cases anonymous-flood --connections 6 --duration 20
 * The bench runs with its own policy: both roles reveal plainly and need no approval.
 * The audit share comes from the server's own histogram (append → commit per request).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatabase } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { DataKeyRing } from '../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../lib/keys/token-keys.js';
import { startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { buildRevealApp } from '../services/reveal-api/app.js';
import { verifyAuditChain } from '../lib/audit/reader.js';
import { latestSignedTreeSize } from '../lib/audit/signed-tree.js';
import { backfillAuditTree } from '../lib/audit/tree-backfill.js';
import { ensureLocalSigningKey, LOCAL_AUDIENCE, LOCAL_ISSUER, mintLocalToken } from '../lib/auth/local-signing-key.js';
import { loadRevealConfig } from '../services/reveal-api/config.js';
import { between, snapshot } from './reveal/histogram.js';
import type { LoadCase, LoadResult } from './reveal/load.js';
import type { ExportJob, ExportReport } from './reveal/export.js';
import { seedAuditLog, seedVault } from './reveal/seed.js';
import { printTable } from './table.js';
import { runBenchmark } from './run.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    rows: { type: 'string', default: '20000' },
    pool: { type: 'string', default: '16' },
    cases: {
      type: 'string',
      default:
        'baseline,reveal-1,reveal-1-no-tree,reveal-1-checkpoints,reveal-1-budget,reveal-1-export,reveal-1-export-3,reveal-100,reveal-100-no-tree,reveal-100-checkpoints,reveal-100-budget,reveal-100-light,proof-inclusion,proof-consistency',
    },
    'audit-rows': { type: 'string', default: '250000' },
    'checkpoint-interval': { type: 'string', default: '1' },
    'light-connections': { type: 'string', default: '4' },
    // Each case runs this many times, the order reversed every other round (drift and noise hit
    // both sides of a comparison alike); the table shows mean req/s and median latencies.
    rounds: { type: 'string', default: '1' },
    // Experiments only (e.g. "DROP INDEX audit_log_tokens_idx"): run as the owner after the migrations.
    'setup-sql': { type: 'string' },
  },
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const LIGHT_CONNECTIONS = Number(args['light-connections']);
const ROWS = Number(args.rows);
const ROUNDS = Math.max(1, Number(args.rounds));
const PURPOSE = 'benchmark: fraud investigation load test';

const cleanups: (() => Promise<unknown>)[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-bench-reveal-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  log('starting PostgreSQL…');
  const postgres = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-bench-pg-' });
  cleanups.unshift(() => postgres.stop());
  const owner = createDatabase({ url: postgres.url, role: undefined, poolSize: 4 });
  cleanups.unshift(() => owner.close());
  await runMigrations(owner);
  if (args['setup-sql'] !== undefined) {
    log(`setup SQL: ${args['setup-sql']}`);
    await owner.pool.query(args['setup-sql']);
  }

  const master = randomBytes(32);
  const ownerKeys = LocalKeyring.fromKey(Buffer.from(master));
  const tokenizer = await loadActiveTokenizer(owner.db, ownerKeys);
  const ring = new DataKeyRing(owner.db, ownerKeys, { maxUses: 10_000_000, maxAgeMs: 3_600_000 });
  log(`seeding ${ROWS} vault rows…`);
  const tokens = await seedVault(owner, ring, tokenizer, ROWS);

  const signingKey = await ensureLocalSigningKey(join(dir, 'jwt'));
  const policyFile = join(dir, 'policy.json');
  const huge = 100_000_000;
  await writeFile(
    policyFile,
    JSON.stringify({
      roles: {
        'bench-unbudgeted': { reveal: { ip: 'plain', device_id: 'plain' } },
        'bench-budgeted': { reveal: { ip: 'plain', device_id: 'plain' }, budget: { per_minute: huge, per_hour: huge, per_day: huge } },
        'bench-auditor': { audit: true },
      },
    }),
  );
  const config = loadRevealConfig({
    DATABASE_URL: postgres.url,
    DATABASE_POOL_SIZE: args.pool,
    LOCAL_MASTER_KEY_FILE: join(dir, 'unused.key'),
    JWT_PUBLIC_KEY: signingKey.publicKeyPem,
    JWT_ISSUER: LOCAL_ISSUER,
    JWT_AUDIENCE: LOCAL_AUDIENCE,
    // The bench is one identity hammering the API: the per-actor limit would stop it at once.
    RATE_LIMIT_MAX: '10000000',
    POLICY_FILE: policyFile,
    // Checkpoints are driven by the bench (only during the *-checkpoints cases), not by the timer.
    AUDIT_SIGNING_KEY_FILE: join(dir, 'audit-signing-key.pem'),
    AUDIT_ED25519_KEY_FILE: join(dir, 'audit-ed25519-key.pem'),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: '0',
    AUDIT_CHECKPOINT_FILE: join(dir, 'checkpoints.jsonl'),
    AUDIT_CHECKPOINT_LOG: 'false',
  });
  const database = createDatabase(config.database, { applicationName: 'bench-reveal-api' });
  cleanups.unshift(() => database.close());
  const app = await buildRevealApp({ config, database, keys: LocalKeyring.fromKey(Buffer.from(master)), logger: pino({ level: 'warn' }) });
  cleanups.unshift(() => app.close());
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const selected = new Set(args.cases.split(','));
  // The same server, writing audit rows without their Merkle nodes: what the tree costs, same run, same database.
  let noTree: { app: typeof app; address: string } | undefined;
  if ([...selected].some((id) => id.endsWith('-no-tree'))) {
    const noTreeDatabase = createDatabase(config.database, { applicationName: 'bench-reveal-api-no-tree' });
    cleanups.unshift(() => noTreeDatabase.close());
    const noTreeApp = await buildRevealApp({ config, database: noTreeDatabase, keys: LocalKeyring.fromKey(Buffer.from(master)), logger: pino({ level: 'warn' }), auditTreeNodes: false });
    cleanups.unshift(() => noTreeApp.close());
    noTree = { app: noTreeApp, address: await noTreeApp.listen({ host: '127.0.0.1', port: 0 }) };
  }
  const headers = {
    authorization: `Bearer ${await mintLocalToken(signingKey, { sub: 'bench-investigator', roles: ['bench-unbudgeted'], ttl: '1h' })}`,
    'content-type': 'application/json',
  };
  const budgetedHeaders = {
    authorization: `Bearer ${await mintLocalToken(signingKey, { sub: 'bench-budgeted', roles: ['bench-budgeted'], ttl: '1h' })}`,
    'content-type': 'application/json',
  };
  const auditorHeaders = { authorization: `Bearer ${await mintLocalToken(signingKey, { sub: 'bench-auditor', roles: ['bench-auditor'], ttl: '1h' })}` };
  const pick = () => tokens[randomInt(tokens.length)] ?? '';
  const bodies = (count: number, size: number) =>
    Array.from({ length: count }, () => JSON.stringify({ tokens: Array.from({ length: size }, pick), purpose: PURPOSE, ticket: 'BENCH-1' }));

  const child = await startLoadProcess();
  cleanups.unshift(async () => child.kill('SIGTERM'));

  const hundreds = bodies(300, 100);
  const ones = bodies(5000, 1);
  const checkpointEvery = Number(args['checkpoint-interval']) * 1000;
  /** Signs checkpoints every interval while a case runs; returns how many it wrote. */
  const checkpointing = () => {
    let written = 0;
    const timer = setInterval(() => {
      void app.auditCheckpointer?.checkpointNow().then((outcome) => (written += outcome.status === 'written' ? 1 : 0), () => undefined);
    }, checkpointEvery);
    return () => {
      clearInterval(timer);
      return written;
    };
  };
  type BenchCase = {
    id: string;
    name: string;
    load: LoadCase;
    tokensPerRequest: number;
    reference?: string;
    checkpoints?: boolean;
    exports?: number;
    /** The server whose audit histogram is read (default: the one with the tree). */
    server?: typeof app;
    /** Untimed, before and after the case. */
    before?: () => Promise<void>;
    after?: () => Promise<void>;
  };
  const reveal = (bodies: string[], extra: { headers?: Record<string, string>; connections?: number; address?: string } = {}): LoadCase => ({
    url: `${extra.address ?? address}/reveal`,
    method: 'POST',
    headers: extra.headers ?? headers,
    bodies,
    connections: extra.connections ?? CONNECTIONS,
    durationSeconds: DURATION,
  });
  /** The same load as `reference`, with something switched on: its cost is the "vs reference" column. */
  const variant = (reference: BenchCase, id: string, name: string, change: Partial<BenchCase>): BenchCase => ({ ...reference, id, name, reference: reference.id, ...change });
  // Against the server without the tree; afterwards the tree catches up over its rows (untimed).
  const withoutTree = (bodies: string[]): Pick<BenchCase, 'load' | 'server' | 'after'> =>
    noTree === undefined
      ? { load: reveal(bodies) }
      : {
          load: reveal(bodies, { address: noTree.address }),
          server: noTree.app,
          after: async () => {
            // Requests the load generator gave up on at the deadline may still be appending: wait until the log stops growing.
            let last = -1;
            for (;;) {
              const { rows } = await owner.pool.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM audit_log');
              const seq = Number(rows[0]?.seq ?? 0);
              if (seq === last) break;
              last = seq;
              await new Promise((resolve) => setTimeout(resolve, 250));
            }
            await backfillAuditTree(owner.pool, { batchRows: 5_000, lockTimeoutMs: 60_000 });
          },
        };
  // reveal-1 and reveal-100 are compared with the same load without the tree ("vs reference": the tree's cost).
  const reveal1: BenchCase = { id: 'reveal-1', name: 'reveal 1 token', tokensPerRequest: 1, load: reveal(ones), reference: 'reveal-1-no-tree' };
  const reveal100: BenchCase = { id: 'reveal-100', name: 'reveal 100 tokens', tokensPerRequest: 100, load: reveal(hundreds), reference: 'reveal-100-no-tree' };
  /** Random entries of the newest signed checkpoint, signed (untimed) just before the case. */
  const proofPaths = (path: (size: number) => string) => {
    const paths: string[] = [];
    return {
      paths,
      before: async () => {
        await app.auditCheckpointer?.checkpointNow();
        const size = (await latestSignedTreeSize(owner.pool))?.size ?? 0;
        if (size < 2) throw new Error('no signed checkpoint to prove to: run a reveal case first');
        paths.splice(0, paths.length, ...Array.from({ length: 5000 }, () => path(size)));
      },
    };
  };
  const inclusion = proofPaths((size) => `/audit/proofs/inclusion?seq=${1 + randomInt(size)}`);
  const consistency = proofPaths((size) => `/audit/proofs/consistency?from=${1 + randomInt(size - 1)}`);
  const proofLoad = (paths: string[]): LoadCase => ({ url: `${address}/audit/proofs/inclusion?seq=1`, method: 'GET', headers: auditorHeaders, bodies: [], paths, connections: CONNECTIONS, durationSeconds: DURATION });
  const everyInterval = `checkpoints every ${args['checkpoint-interval']} s`;
  // A running service signed its last checkpoint one interval ago: so does the case, untimed, so its
  // first checkpoint covers one interval of rows, not every row the previous cases wrote.
  const signedBefore = async () => void (await app.auditCheckpointer?.checkpointNow());
  const cases: BenchCase[] = [
    { id: 'baseline', name: 'baseline GET /healthz', tokensPerRequest: 0, load: { url: `${address}/healthz`, method: 'GET', headers: {}, bodies: [], connections: CONNECTIONS, durationSeconds: DURATION } },
    reveal1,
    { id: 'reveal-1-no-tree', name: 'reveal 1 token, no Merkle nodes (rows only)', tokensPerRequest: 1, ...withoutTree(ones) },
    variant(reveal1, 'reveal-1-budget', 'reveal 1 token, budgets enforced', { load: reveal(ones, { headers: budgetedHeaders }) }),
    variant(reveal1, 'reveal-1-checkpoints', `reveal 1 token, ${everyInterval}`, { checkpoints: true, before: signedBefore }),
    variant(reveal1, 'reveal-1-export', 'reveal 1 token, one audit export running', { exports: 1 }),
    variant(reveal1, 'reveal-1-export-3', 'reveal 1 token, three audit exports tried at once', { exports: 3 }),
    reveal100,
    { id: 'reveal-100-no-tree', name: 'reveal 100 tokens, no Merkle nodes (rows only)', tokensPerRequest: 100, ...withoutTree(hundreds) },
    variant(reveal100, 'reveal-100-checkpoints', `reveal 100 tokens, ${everyInterval}`, { checkpoints: true, before: signedBefore }),
    variant(reveal100, 'reveal-100-budget', 'reveal 100 tokens, budgets enforced', { load: reveal(hundreds, { headers: budgetedHeaders }) }),
    { id: 'reveal-100-light', name: `reveal 100 tokens, ${LIGHT_CONNECTIONS} conn`, tokensPerRequest: 100, load: reveal(hundreds, { connections: LIGHT_CONNECTIONS }) },
    { id: 'proof-inclusion', name: 'GET /audit/proofs/inclusion', tokensPerRequest: 0, load: proofLoad(inclusion.paths), before: inclusion.before },
    { id: 'proof-consistency', name: 'GET /audit/proofs/consistency', tokensPerRequest: 0, load: proofLoad(consistency.paths), before: consistency.before },
  ];
  const reveal1Light: BenchCase = { id: 'reveal-1-light', name: `reveal 1 token, ${LIGHT_CONNECTIONS} conn`, tokensPerRequest: 1, load: reveal(ones, { connections: LIGHT_CONNECTIONS }) };
  cases.push(reveal1Light, variant(reveal1Light, 'reveal-1-light-export', `reveal 1 token, ${LIGHT_CONNECTIONS} conn, one audit export running`, { exports: 1 }));

  const exporting = cases.some((item) => item.exports !== undefined && selected.has(item.id));
  const exporter = exporting ? await startChild('./reveal/export.ts') : undefined;
  if (exporter !== undefined) {
    cleanups.unshift(async () => exporter.kill('SIGTERM'));
    log(`seeding ${Number(args['audit-rows'])} audit rows for the export cases…`);
    await seedAuditLog(owner, Number(args['audit-rows']), tokens);
  }
  const exportReports = new Map<string, ExportReport[]>();
  // How fast an export runs with nothing else to do (the cases show how much it yields under load).
  const exportAlone = exporter === undefined ? undefined : await timeExport(`${address}/audit/export`, auditorHeaders);

  // Warm-up: JIT, connection pool, prepared statements, data key unwrap.
  await runLoad(child, { ...(cases[1] ?? cases[0])!.load, durationSeconds: 2 });

  const chosen = cases.filter((item) => selected.has(item.id));
  const unknown = [...selected].filter((id) => id !== 'anonymous-flood' && !cases.some((item) => item.id === id));
  if (unknown.length > 0) throw new Error(`unknown case(s): ${unknown.join(', ')}; known: ${[...cases.map((item) => item.id), 'anonymous-flood'].join(', ')}`);
  const runs = new Map<string, { result: LoadResult; audit: ReturnType<typeof between>; rowsPerBatch: number }[]>();
  const checkpointCounts = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const { id, name, load, checkpoints, exports, server = app, before: prepare, after: finish } of round % 2 === 0 ? chosen : [...chosen].reverse()) {
      await prepare?.();
      log(`round ${round + 1}/${ROUNDS}: running ${name} for ${DURATION}s with ${load.connections} connections…`);
      const before = await snapshot(server.revealMetrics.auditWrite);
      const batchesBefore = await snapshot(server.revealMetrics.auditBatchSize);
      const stopCheckpoints = checkpoints === true ? checkpointing() : undefined;
      if (exports !== undefined && exporter !== undefined) await startExports(exporter, { url: `${address}/audit/export`, headers: auditorHeaders, clients: exports });
      const result = await runLoad(child, load);
      if (exports !== undefined && exporter !== undefined) exportReports.set(id, [...(exportReports.get(id) ?? []), await stopExports(exporter)]);
      if (stopCheckpoints !== undefined) checkpointCounts.set(id, (checkpointCounts.get(id) ?? 0) + stopCheckpoints());
      const audit = between(before, await snapshot(server.revealMetrics.auditWrite));
      const batches = between(batchesBefore, await snapshot(server.revealMetrics.auditBatchSize));
      await finish?.();
      runs.set(id, [...(runs.get(id) ?? []), { result, audit, rowsPerBatch: batches.count === 0 ? 0 : audit.count / batches.count }]);
      const failed = Object.entries(result.statuses).filter(([status]) => !status.startsWith('2'));
      log(`  → ${fmt(result.requestsPerSecond, 0)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms${failed.length === 0 ? '' : `; answers other than 2xx: ${failed.map(([status, count]) => `${count}× ${status}`).join(', ')}`}`);
    }
  }

  const summarise = (id: string) => {
    const done = runs.get(id) ?? [];
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
    return {
      rps: mean(done.map((run) => run.result.requestsPerSecond)),
      p50: median(done.map((run) => run.result.p50)),
      p99: median(done.map((run) => run.result.p99)),
      auditMean: mean(done.map((run) => run.audit.meanMs)),
      auditP99: median(done.map((run) => run.audit.p99AtMostMs)),
      rowsPerBatch: mean(done.map((run) => run.rowsPerBatch)),
      failures: done.reduce((sum, run) => sum + run.result.non2xx + run.result.errors + run.result.timeouts, 0),
    };
  };
  const baselineRps = selected.has('baseline') ? summarise('baseline').rps : 0;
  const rows = chosen.map(({ id, name, tokensPerRequest, reference: referenceId }) => {
    const run = summarise(id);
    const reference = referenceId === undefined || !runs.has(referenceId) ? undefined : summarise(referenceId);
    return [
      name,
      fmt(run.rps, 0),
      baselineRps === 0 ? '-' : `${fmt(run.rps / baselineRps, 2)}×`,
      fmt(run.rps * tokensPerRequest, 0),
      `${run.p50}`,
      `${run.p99}`,
      reference === undefined ? '-' : `${fmt(run.rps / reference.rps, 2)}× req/s, p99 ${reference.p99}→${run.p99} (${fmt(run.p99 / Math.max(1, reference.p99), 2)}×)`,
      tokensPerRequest === 0 ? '-' : fmt(run.auditMean, 2),
      tokensPerRequest === 0 ? '-' : `≤${fmt(run.auditP99, 1)}`,
      tokensPerRequest === 0 || run.p50 === 0 ? '-' : `${fmt((run.auditMean / run.p50) * 100, 0)}%`,
      tokensPerRequest === 0 ? '-' : fmt(run.rowsPerBatch, 1),
      `${run.failures}`,
    ];
  });

  const flood = selected.has('anonymous-flood') ? await anonymousFlood() : undefined;

  /**
   * The finding of issue 16: requests without valid credentials, as fast as --connections loops
   * can send them, against a server of its own with the production defaults. Its summaries are
   * written when it closes, so the rows and bytes counted are everything the flood leaves behind.
   */
  async function anonymousFlood() {
    const floodConfig = loadRevealConfig({
      DATABASE_URL: postgres.url,
      DATABASE_POOL_SIZE: args.pool,
      LOCAL_MASTER_KEY_FILE: join(dir, 'unused.key'),
      JWT_PUBLIC_KEY: signingKey.publicKeyPem,
      JWT_ISSUER: LOCAL_ISSUER,
      JWT_AUDIENCE: LOCAL_AUDIENCE,
      POLICY_FILE: policyFile,
    });
    const floodApp = await buildRevealApp({ config: floodConfig, database, keys: LocalKeyring.fromKey(Buffer.from(master)), logger: pino({ level: 'warn' }) });
    const floodAddress = await floodApp.listen({ host: '127.0.0.1', port: 0 });
    const body = JSON.stringify({ tokens: Array.from({ length: 100 }, pick), purpose: `${PURPOSE} ${'p'.repeat(500 - PURPOSE.length - 1)}`, ticket: 'T'.repeat(128) });
    const measure = async () => {
      const { rows } = await owner.pool.query<{ rows: string; audit_bytes: string; windows_bytes: string }>(
        "SELECT (SELECT count(*) FROM audit_log) AS rows, pg_total_relation_size('audit_log') AS audit_bytes, pg_total_relation_size('refusal_windows') AS windows_bytes",
      );
      return { rows: Number(rows[0]?.rows), auditBytes: Number(rows[0]?.audit_bytes), windowsBytes: Number(rows[0]?.windows_bytes) };
    };
    const before = await measure();
    const loadBefore = loadavg()[0] ?? 0;
    log(`anonymous flood: ${CONNECTIONS} loops for ${DURATION}s without valid credentials, 100 tokens + 500-character purpose + 128-character ticket each…`);
    const result = await runLoad(child, {
      url: `${floodAddress}/reveal`,
      method: 'POST',
      headers: {},
      headerSets: [{ 'content-type': 'application/json' }, { 'content-type': 'application/json', authorization: 'Bearer garbage.garbage.garbage' }],
      bodies: [body],
      connections: CONNECTIONS,
      durationSeconds: DURATION,
    });
    const loadAfter = loadavg()[0] ?? 0;
    await floodApp.close();
    const after = await measure();
    return { result, before, after, body: Buffer.byteLength(body), load: [loadBefore, loadAfter] };
  }

  const chain = await verifyAuditChain(owner.pool);
  if (flood !== undefined) {
    const { result, before, after } = flood;
    const rowsAdded = after.rows - before.rows;
    const mib = (bytes: number) => (Math.abs(bytes) < 1024 * 1024 ? `${fmt(bytes / 1024, 0)} KiB` : `${fmt(bytes / 1024 / 1024, 2)} MiB`);
    const other = result.requests - (result.statuses['401'] ?? 0) - (result.statuses['429'] ?? 0);
    printTable(
      ['case', 'requests', 'req/s', '401', '429', 'other', 'audit rows added', 'audit_log growth', 'rows per 1,000 requests', 'refusal_windows size'],
      [
        [
          `anonymous flood, ${CONNECTIONS} loops × ${DURATION} s, ${flood.body} B bodies`,
          `${result.requests}`,
          fmt(result.requestsPerSecond, 0),
          `${result.statuses['401'] ?? 0}`,
          `${result.statuses['429'] ?? 0}`,
          `${other}`,
          `${rowsAdded}`,
          mib(after.auditBytes - before.auditBytes),
          fmt((rowsAdded / Math.max(1, result.requests)) * 1000, 2),
          mib(after.windowsBytes),
        ],
      ],
    );
    console.log(
      `
anonymous flood: one audit row per request before issue 16 (1,000 rows per 1,000 requests; the issue measured 19,587 rows, +138.6 MiB in 20 s);` +
        ` now ${fmt((rowsAdded / Math.max(1, result.requests)) * 1000, 2)} per 1,000. Load average (1 min) ${fmt(flood.load[0] ?? 0, 2)} before, ${fmt(flood.load[1] ?? 0, 2)} after.\n`,
    );
  }
  if (chosen.length === 0) {
    console.log(`audit chain after the run: ${chain.ok ? 'intact' : `BROKEN at ${chain.firstBrokenSeq}`}, ${chain.checked} rows.`);
    return;
  }
  printTable(
    ['case', 'req/s', 'vs baseline', 'values/s', 'p50 ms', 'p99 ms', 'vs reference', 'audit mean ms', 'audit p99 ms', 'audit/p50', 'rows/commit', 'errors'],
    rows,
  );
  console.log(
    `\naudit chain after the run: ${chain.ok ? 'intact' : `BROKEN at ${chain.firstBrokenSeq}`}, ${chain.checked} rows (one per request).` +
      `\n${CONNECTIONS} connections unless stated, ${DURATION}s per case and round, ${ROUNDS} round(s), ${ROWS} vault rows, pool ${args.pool}, loopback, load generator in a separate process.` +
      '\naudit = time from append to COMMIT of the request\'s audit row (server histogram; p99 at bucket resolution).' +
      '\nreveal-1 / reveal-100 "vs reference": with the Merkle tree (leaf + nodes in the row\'s transaction) vs the same load on a server writing rows only (*-no-tree).' +
      [...checkpointCounts].map(([id, count]) => `\n${id}: ${count} signed checkpoints written during the case`).join('') +
      [...exportReports].map(([id, reports]) => {
        const total = (key: 'completed' | 'refused' | 'failed' | 'lines') => reports.reduce((sum, report) => sum + report[key], 0);
        const codes = [...new Set(reports.flatMap((report) => report.refusalCodes))];
        return `\n${id}: ${total('completed')} exports completed, ${fmt(total('lines') / (DURATION * reports.length), 0)} lines/s exported, ${total('refused')} attempts refused${codes.length > 0 ? ` (${codes.join(', ')})` : ''}, ${total('failed')} failed`;
      }).join('') +
      (exportAlone === undefined ? '' : `\nan export alone (no reveal load): ${exportAlone.lines} lines in ${fmt(exportAlone.seconds, 1)} s (${fmt(exportAlone.lines / exportAlone.seconds, 0)} lines/s)`) +
      `\nload average at the end: ${(await readFile('/proc/loadavg', 'utf8').catch(() => 'unknown')).trim()} (not a quiet machine unless it is near 0)`,
  );
}

function startChild(module: string): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(module, import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${module} exited with ${code}`)));
  });
}

async function timeExport(url: string, headers: Record<string, string>): Promise<{ lines: number; seconds: number }> {
  const started = performance.now();
  const response = await fetch(url, { headers });
  let lines = 0;
  for await (const chunk of response.body ?? []) for (const byte of chunk as Uint8Array) if (byte === 10) lines += 1;
  return { lines, seconds: (performance.now() - started) / 1000 };
}

/** Starts the export clients; resolves once an export is streaming (or said it could not start in 2 minutes). */
function startExports(child: ChildProcess, job: ExportJob): Promise<void> {
  return new Promise((resolve) => {
    child.once('message', (message: { started: boolean }) => {
      if (!message.started) process.stderr.write('  (no export started streaming within 2 minutes: the case runs without one)\n');
      resolve();
    });
    child.send(job);
  });
}

function stopExports(child: ChildProcess): Promise<ExportReport> {
  return new Promise((resolve) => {
    child.once('message', (report: ExportReport) => resolve(report));
    child.send('stop');
  });
}

function startLoadProcess(): Promise<ChildProcess> {
  return startChild('./reveal/load.ts');
}

function runLoad(child: ChildProcess, load: LoadCase): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    child.once('message', (message: { ok: boolean; result?: LoadResult; error?: string }) => {
      if (message.ok && message.result !== undefined) resolve(message.result);
      else reject(new Error(message.error ?? 'load failed'));
    });
    child.send(load);
  });
}

function fmt(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '∞';
}

await runBenchmark(main, cleanups, log);
