/**
 * The data-lifecycle numbers, in one run on one embedded PostgreSQL:
 *   - preload: `rows` logins over 12 monthly partitions (SQL generate_series, indexes built after),
 *     and the same rows in an unpartitioned copy (schema `plain`, the pre-0007 shape);
 *   - ingest: the real sink (validate, tokenise, encrypt, group commit) into each, rounds in
 *     A-B-B-A order so neither gets the warmer cache;
 *   - retention of the oldest month: maintenance (DROP partition + batched shredding, audited)
 *     vs the unpartitioned baseline (DELETE of the month's rows, no shredding);
 *   - access and erasure of one person (person_logins / person_erase + the audit row).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { withTransaction } from '../../db/transaction.js';
import { createDatabase, type Database } from '../../db/client.js';
import { migrate } from '../../lib/runtime/migrate.js';
import * as schema from '../../db/schema.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../lib/keys/token-keys.js';
import { createMaintenanceMetrics } from '../../lib/lifecycle/metrics.js';
import { monthStart, prepareMonth } from '../../lib/lifecycle/partitions.js';
import { applyRetention } from '../../lib/lifecycle/retention.js';
import { startEmbeddedPostgres } from '../../local/embedded-postgres.js';
import { insertAudit } from '../../lib/audit/insert.js';
import { createSink, KnownTokens, type InboundMessage } from '../../services/ingestor/index.js';
import { syntheticBodies } from '../ingest/messages.js';

export interface LifecycleBenchOptions {
  rows: number;
  /** Messages per ingest round (4 rounds: 2 per table). */
  messages: number;
  batch: number;
  /** People erased (each timed). */
  persons: number;
  log: (line: string) => void;
}

const MONTHS = 12;

export async function runLifecycleBench(options: LifecycleBenchOptions): Promise<void> {
  const { rows: N, log } = options;
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    log('starting PostgreSQL…');
    const postgres = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-bench-pg-' });
    cleanups.unshift(() => postgres.stop());
    const owner = createDatabase({ url: postgres.url, role: undefined, poolSize: 4 });
    cleanups.unshift(() => owner.close());
    // Bulk-load settings (bench only): fewer checkpoints, more memory for index builds.
    await owner.pool.query(`ALTER SYSTEM SET max_wal_size = '8GB'`);
    await owner.pool.query(`ALTER SYSTEM SET maintenance_work_mem = '512MB'`);
    await owner.pool.query('SELECT pg_reload_conf()');
    await migrate(owner);

    const now = new Date();
    const months = Array.from({ length: MONTHS }, (_, index) => monthStart(now, index - (MONTHS - 1)));
    for (const month of months) await prepareMonth(owner.pool, month);
    const preload = await preloadRows(owner, N, months, log);

    // --- ingest, partitioned vs not -------------------------------------------------------
    const keys = LocalKeyring.fromKey(randomBytes(32));
    const partitionedDb = createDatabase({ url: postgres.url, role: 'ingestor', poolSize: 6 }, { applicationName: 'bench-partitioned' });
    cleanups.unshift(() => partitionedDb.close());
    const plainDb = withSearchPath(postgres.url, 'plain, public');
    cleanups.unshift(() => plainDb.close());
    const tokenizer = await loadActiveTokenizer(partitionedDb.db, keys);
    const policy = { maxUses: 10_000_000, maxAgeMs: 3_600_000 };
    const ingest = async (database: Database, seed: number): Promise<number> => {
      const bodies = syntheticBodies({ messages: options.messages, distinctIps: 20_000, distinctDevices: 30_000, malformedRate: 0.01, seed });
      const sentAt = new Date();
      const inbound: InboundMessage[] = bodies.map((body) => ({ messageId: randomUUID(), body, sentAt, receiveCount: 1 }));
      const sink = createSink({ database, dataKeys: new DataKeyRing(database.db, keys, policy), tokenizer: () => tokenizer, knownTokens: new KnownTokens(100_000) });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 2 }, async () => {
          for (;;) {
            const start = next;
            next += options.batch;
            if (start >= inbound.length) return;
            await sink.write(inbound.slice(start, start + options.batch));
          }
        }),
      );
      return (performance.now() - started) / 1000;
    };
    const seconds = { partitioned: 0, plain: 0 };
    // A-B-B-A with the same two message sets for each table.
    const rounds = [['plain', 1], ['partitioned', 1], ['partitioned', 2], ['plain', 2]] as const;
    for (const [round, [which, seed]] of rounds.entries()) {
      log(`ingest round ${round + 1}/4: ${options.messages} messages into the ${which} table…`);
      seconds[which] += await ingest(which === 'plain' ? plainDb : partitionedDb, seed);
    }
    const ingested = options.messages * 2;
    log(`result: ingest partitioned ${Math.round(ingested / seconds.partitioned)} msg/s, unpartitioned ${Math.round(ingested / seconds.plain)} msg/s`);
    const plainCount = Number((await owner.pool.query<{ n: string }>('SELECT count(*) AS n FROM plain.user_logins')).rows[0]?.n);
    const partCount = Number((await owner.pool.query<{ n: string }>('SELECT count(*) AS n FROM public.user_logins')).rows[0]?.n);
    check(plainCount === partCount, `both tables hold the same rows (${plainCount} vs ${partCount})`);
    await owner.pool.query('ANALYZE');

    // --- retention of the oldest month ------------------------------------------------------
    const oldest = months[0] ?? '';
    const second = months[1] ?? '';
    const monthRows = Number((await owner.pool.query<{ n: string }>(`SELECT count(*) AS n FROM user_logins WHERE create_date < $1::date`, [second])).rows[0]?.n);
    log(`retention: dropping ${oldest} (${monthRows} rows) and shredding its orphaned values…`);
    let shredStarted = 0;
    const retentionStarted = performance.now();
    const result = await applyRetention(
      {
        pool: owner.pool,
        metrics: createMaintenanceMetrics(),
        onProgress: (step) => {
          if (step.startsWith('shredding') && shredStarted === 0) shredStarted = performance.now();
        },
      },
      // Cutoff = the first day of the second month: exactly the oldest month is past it.
      { loginRetentionDays: 1, quarantineRetentionDays: undefined, batchSize: 1000, today: new Date(`${addDays(second, 1)}T12:00:00Z`) },
    );
    const retentionEnd = performance.now();
    const dropSeconds = ((shredStarted || retentionEnd) - retentionStarted) / 1000;
    const shredSeconds = shredStarted === 0 ? 0 : (retentionEnd - shredStarted) / 1000;
    check(result.partitionsDropped.length === 1 && result.loginRowsRemoved === monthRows, `retention dropped ${JSON.stringify(result.partitionsDropped)}`);
    log('retention baseline: DELETE of the same month from the unpartitioned table…');
    const deleteStarted = performance.now();
    const deleted = await owner.pool.query(`DELETE FROM plain.user_logins WHERE create_date < $1::date`, [second]);
    const deleteSeconds = (performance.now() - deleteStarted) / 1000;
    check(deleted.rowCount === monthRows, `baseline deleted ${deleted.rowCount}`);
    log(`result: retention drop ${dropSeconds.toFixed(1)} s, shred ${shredSeconds.toFixed(1)} s (${JSON.stringify(result.shredded)}, kept ${result.valuesKept}), DELETE baseline ${deleteSeconds.toFixed(1)} s`);

    // The same operation without shredding, to compare with the DELETE: detach + drop the next month.
    const third = months[2] ?? '';
    const nextRows = Number((await owner.pool.query<{ n: string }>(`SELECT count(*) AS n FROM user_logins WHERE create_date < $1::date`, [third])).rows[0]?.n);
    const partition = `user_logins_p${second.slice(0, 4)}${second.slice(5, 7)}`;
    const bareStarted = performance.now();
    await owner.pool.query(`BEGIN; ALTER TABLE user_logins DETACH PARTITION ${partition}; DROP TABLE ${partition}; COMMIT`);
    const bareDropSeconds = (performance.now() - bareStarted) / 1000;
    const bareDeleteStarted = performance.now();
    await owner.pool.query(`DELETE FROM plain.user_logins WHERE create_date < $1::date`, [third]);
    const bareDeleteSeconds = (performance.now() - bareDeleteStarted) / 1000;

    // --- one person -------------------------------------------------------------------------
    log(`access and erasure of ${options.persons} people…`);
    const reveal = createDatabase({ url: postgres.url, role: 'reveal_api', poolSize: 2 });
    cleanups.unshift(() => reveal.close());
    const access: number[] = [];
    const erase: number[] = [];
    let erasedRows = 0;
    let shredded = 0;
    let kept = 0;
    for (let index = 0; index < options.persons; index += 1) {
      const userId = `user-${(index * 7_919) % preload.users}`;
      let started = performance.now();
      await reveal.pool.query('SELECT * FROM person_logins($1)', [userId]);
      access.push(performance.now() - started);
      started = performance.now();
      const rows = await withTransaction(reveal.pool, async (client) => {
        // As /persons/erase does: lock and read the rows (their tags would be checked here), then erase those.
        const { rows: held } = await client.query<{ message_id: string; create_date: string }>('SELECT message_id, create_date FROM person_erase_begin($1)', [userId]);
        const { rows: erased } = await client.query<{ rows_deleted: string; shredded_tokens: string[]; kept_tokens: string[] }>(
          'SELECT * FROM person_erase($1, $2::text[], $3::date[])',
          [userId, held.map((row) => row.message_id), held.map((row) => row.create_date)],
        );
        await insertAudit(client, [
          { action: 'person.erase', actor: 'bench', roles: ['privacy-officer'], clientAddress: null, requestId: null, purpose: 'bench', ticket: 'BENCH-1', tokens: erased[0]?.shredded_tokens ?? [], fieldCounts: {}, outcome: 'allowed', reason: null },
        ]);
        return erased;
      });
      erase.push(performance.now() - started);
      erasedRows += Number(rows[0]?.rows_deleted ?? 0);
      shredded += rows[0]?.shredded_tokens.length ?? 0;
      kept += rows[0]?.kept_tokens.length ?? 0;
    }

    const fmt = (value: number) => Math.round(value).toLocaleString('en-US');
    const rate = { partitioned: ingested / seconds.partitioned, plain: ingested / seconds.plain };
    console.log(
      `\nbench:lifecycle — ${fmt(N)} preloaded rows over ${MONTHS} monthly partitions (${fmt(preload.users)} users, ${fmt(preload.ips)} IPs, ${fmt(preload.devices)} devices), ` +
        `preload ${preload.seconds.toFixed(0)} s; 2-core machine\n`,
    );
    console.table([
      { measure: 'ingest, partitioned user_logins (sink, 2×A-B-B-A rounds)', value: `${fmt(rate.partitioned)} msg/s`, detail: `${fmt(ingested)} messages in ${seconds.partitioned.toFixed(1)} s` },
      { measure: 'ingest, unpartitioned user_logins (same run, baseline)', value: `${fmt(rate.plain)} msg/s`, detail: `${fmt(ingested)} messages in ${seconds.plain.toFixed(1)} s` },
      { measure: 'retention of one month: DROP partition (+ candidates, audit)', value: `${dropSeconds.toFixed(1)} s`, detail: `${fmt(monthRows)} rows` },
      {
        measure: 'retention of one month: shred orphaned vault values',
        value: `${shredSeconds.toFixed(1)} s`,
        detail: `${fmt(result.valuesChecked)} checked, ${fmt(result.shredded.ip)} ip + ${fmt(result.shredded.device_id)} device_id shredded, ${fmt(result.valuesKept)} kept`,
      },
      { measure: 'retention baseline: DELETE the month from the unpartitioned table', value: `${deleteSeconds.toFixed(1)} s`, detail: `${fmt(monthRows)} rows, no shredding` },
      { measure: 'next month: bare DETACH + DROP partition (no shredding)', value: `${(bareDropSeconds * 1000).toFixed(0)} ms`, detail: `${fmt(nextRows)} rows` },
      { measure: 'next month: bare DELETE from the unpartitioned table', value: `${bareDeleteSeconds.toFixed(1)} s`, detail: `${fmt(nextRows)} rows (leaves dead tuples for VACUUM)` },
      { measure: 'access one person (person_logins)', value: `${median(access).toFixed(1)} ms median`, detail: `p95 ${percentile(access, 0.95).toFixed(1)} ms, ${options.persons} people` },
      {
        measure: 'erase one person (rows in every partition + shred + audit row)',
        value: `${median(erase).toFixed(1)} ms median`,
        detail: `p95 ${percentile(erase, 0.95).toFixed(1)} ms; ${fmt(erasedRows)} rows, ${fmt(shredded)} values shredded, ${fmt(kept)} kept (shared)`,
      },
    ]);
    console.log('ratios');
    console.table([
      { ratio: 'ingest partitioned / unpartitioned', value: (rate.partitioned / rate.plain).toFixed(2) },
      { ratio: 'bare DROP / bare DELETE of a month (time)', value: (bareDropSeconds / bareDeleteSeconds).toFixed(4) },
      { ratio: 'retention DROP step (with shred candidates) / DELETE baseline (time)', value: (dropSeconds / deleteSeconds).toFixed(2) },
      { ratio: 'retention DROP + shred / DELETE baseline (time)', value: ((dropSeconds + shredSeconds) / deleteSeconds).toFixed(2) },
    ]);
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
  }
}

/** Rows the way the ingestor stores them (token-shaped strings, one vault row per distinct value), loaded at COPY-like speed. */
async function preloadRows(owner: Database, rows: number, months: string[], log: (line: string) => void): Promise<{ users: number; ips: number; devices: number; seconds: number }> {
  const users = Math.max(1, Math.floor(rows / 10));
  const ips = Math.max(1, Math.floor(rows / 8));
  const devices = Math.max(1, Math.floor(rows / 8));
  const started = performance.now();
  const q = (sql: string, params: unknown[] = []) => owner.pool.query(sql, params);
  // Indexes are built after the load (several times faster than maintained row by row).
  const indexes = ['user_logins_masked_ip_idx', 'user_logins_masked_device_id_idx', 'user_logins_create_date_idx', 'user_logins_user_id_idx'];
  const { rows: definitions } = await q(`SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'user_logins' AND schemaname = 'public' AND indexname = ANY($1)`, [indexes]);
  for (const index of indexes) await q(`DROP INDEX ${index}`);
  await q('ALTER TABLE user_logins DROP CONSTRAINT user_logins_pkey');
  const token = (field: string, expr: string) => `'${field}_v1_' || translate(encode(sha256(('${field}' || (${expr}))::bytea), 'base64'), '+/=', '-_')`;
  const first = months[0] ?? '';
  const chunk = 1_000_000;
  for (let start = 0; start < rows; start += chunk) {
    const end = Math.min(rows, start + chunk) - 1;
    log(`preload: rows ${start.toLocaleString('en-US')}–${end.toLocaleString('en-US')} of ${rows.toLocaleString('en-US')}…`);
    await q(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, app_version_major,
                                app_version_minor, app_version_patch, create_date, sent_at, token_key_version)
       SELECT md5('m' || n), 'user-' || (n % $2), CASE n % 2 WHEN 0 THEN 'ios' ELSE 'android' END,
              -- A quarter of the logins come from an IP seen only once, a fifth from a one-off device
              -- (values retention can shred); the rest from pools every month shares.
              ${token('ip', `CASE WHEN n % 4 = 0 THEN $3 + n ELSE (n::bigint * 7919) % $3 END`)},
              ${token('device_id', `CASE WHEN n % 5 = 0 THEN $4 + n ELSE (n::bigint * 104729) % $4 END`)},
              'RU', '2.3.0', 2, 3, 0, d::date, d, 1
       FROM generate_series($5::bigint, $6::bigint) AS n,
            LATERAL (SELECT $7::date + (n * ${months.length} / $1::bigint) * interval '1 month' + (n % 28) * interval '1 day' + (n % 86400) * interval '1 second' AS d) AS t`,
      [rows, users, ips, devices, start, end, first],
    );
  }
  log('preload: vault rows, indexes…');
  await q(`INSERT INTO data_keys (purpose, wrapped_key, kek_id) VALUES ('vault', '\\x00', 'bench') RETURNING id`);
  await q(
    `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version)
     SELECT t, f, decode(md5(t) || md5(f || t), 'hex'), (SELECT max(id) FROM data_keys), 1
     FROM (SELECT masked_ip AS t, 'ip' AS f FROM user_logins UNION SELECT masked_device_id, 'device_id' FROM user_logins) AS v`,
  );
  await q('ALTER TABLE user_logins ADD CONSTRAINT user_logins_pkey PRIMARY KEY (message_id, create_date)');
  for (const { indexdef } of definitions as { indexdef: string }[]) await q(indexdef.replace(' ONLY ', ' '));

  log('preload: the unpartitioned copy (schema plain)…');
  await q('CREATE SCHEMA plain');
  await q(`CREATE TABLE plain.user_logins (LIKE public.user_logins INCLUDING DEFAULTS)`);
  await q('INSERT INTO plain.user_logins SELECT * FROM public.user_logins');
  await q('ALTER TABLE plain.user_logins ADD PRIMARY KEY (message_id)');
  for (const column of ['masked_ip', 'masked_device_id', 'create_date', 'user_id']) await q(`CREATE INDEX ON plain.user_logins (${column})`);
  await q('CREATE TABLE plain.pii_vault (LIKE public.pii_vault INCLUDING ALL)');
  await q('INSERT INTO plain.pii_vault SELECT * FROM public.pii_vault');
  await q('CREATE TABLE plain.quarantine (LIKE public.quarantine INCLUDING ALL)');
  await q('GRANT USAGE ON SCHEMA plain TO ingestor');
  await q('GRANT INSERT ON ALL TABLES IN SCHEMA plain TO ingestor');
  await q('VACUUM ANALYZE');
  const { rows: distinct } = await q(`SELECT count(*) FILTER (WHERE field = 'ip')::int AS ips, count(*) FILTER (WHERE field = 'device_id')::int AS devices FROM pii_vault`);
  return { users, ips: distinct[0].ips as number, devices: distinct[0].devices as number, seconds: (performance.now() - started) / 1000 };
}

/** A Database whose unqualified table names resolve in `searchPath` first, as the ingestor role. */
function withSearchPath(url: string, searchPath: string): Database {
  const pool = new pg.Pool({ connectionString: url, max: 6, options: `-c role=ingestor -c search_path=${searchPath.replaceAll(' ', '')}` });
  pool.on('error', () => {});
  return { pool, db: drizzle(pool, { schema }), close: () => pool.end() };
}

function addDays(day: string, days: number): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

function median(values: number[]): number {
  return percentile(values, 0.5);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`bench sanity check failed: ${what}`);
}
