import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { MIGRATIONS_FOLDER, runMigrations } from '../../../db/migrate.js';
import { listPartitions } from '../../../lib/lifecycle/partitions.js';
import { moveUnpartitioned } from '../../../lib/lifecycle/unpartitioned.js';
import { createDatabaseIfMissing } from '../../../local/embedded-postgres.js';

interface Journal {
  entries: { idx: number; tag: string; when: number }[];
}

const opened: { name: string; database: Database }[] = [];
let beforePartitioning: string;

/** The migrations as they were before partitioning (up to 0003), as a database of an earlier release has them. */
beforeAll(async () => {
  beforePartitioning = await mkdtemp(join(tmpdir(), 'tokenvault-migrations-'));
  const journal = JSON.parse(await readFile(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as Journal;
  const earlier = journal.entries.filter((entry) => entry.idx <= 3);
  await mkdir(join(beforePartitioning, 'meta'));
  await writeFile(join(beforePartitioning, 'meta/_journal.json'), JSON.stringify({ ...journal, entries: earlier }));
  for (const entry of earlier) await copyFile(join(MIGRATIONS_FOLDER, `${entry.tag}.sql`), join(beforePartitioning, `${entry.tag}.sql`));
});
afterAll(async () => {
  const adminUrl = inject('postgresAdminUrl');
  for (const { name, database } of opened) {
    await database.close().catch(() => undefined);
    const client = new pg.Client({ connectionString: adminUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.end();
  }
  await rm(beforePartitioning, { recursive: true, force: true });
});

/** A database of the previous release holding `rows` logins spread over January to March 2024. */
async function populatedEarlierDatabase(rows: number): Promise<Database> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  await createDatabaseIfMissing(adminUrl, name);
  const database = createDatabase({ url: adminUrl.replace(/\/postgres$/, `/${name}`), role: undefined, poolSize: 4 });
  opened.push({ name, database });
  await migrate(database.db, { migrationsFolder: beforePartitioning });
  await database.pool.query(
    `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, create_date, sent_at, token_key_version)
     SELECT 'm' || lpad(n::text, 9, '0'), 'user-' || (n % 5000), 'ios', 'ip_v1_' || (n % 7000), 'device_id_v1_' || (n % 9000), NULL, '2.3.0',
            (timestamptz '2024-01-01' + (n % 90) * interval '1 day')::date, timestamptz '2024-01-01' + (n % 90) * interval '1 day', 1
     FROM generate_series(1, $1::int) AS n`,
    [rows],
  );
  return database;
}

async function count(database: Database, table: string): Promise<number> {
  return Number((await database.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);
}

describe('moving an existing unpartitioned user_logins into partitions', () => {
  it('moves a small table inside the migration itself', { timeout: 120_000 }, async () => {
    const database = await populatedEarlierDatabase(500);
    await runMigrations(database);
    expect(await count(database, 'user_logins')).toBe(500);
    const { rows } = await database.pool.query(`SELECT to_regclass('user_logins_unpartitioned') AS t`);
    expect(rows[0].t).toBeNull();
    const partitions = (await listPartitions(database.pool)).map((p) => p.name);
    expect(partitions).toEqual(expect.arrayContaining(['user_logins_p202401', 'user_logins_p202402', 'user_logins_p202403']));
    expect(await count(database, 'user_logins_default')).toBe(0);
  });

  it('moves a populated table online in resumable batches while ingestion continues, losing and duplicating nothing', { timeout: 120_000 }, async () => {
    const total = 12_050;
    const database = await populatedEarlierDatabase(total);
    await runMigrations(database);
    // Too large for the migration: it waits, readable by analysts, beside the new table.
    expect(await count(database, 'user_logins_unpartitioned')).toBe(total);
    expect(await count(database, 'user_logins')).toBe(0);
    const analyst = createDatabase({ url: database.pool.options.connectionString ?? '', role: 'analyst', poolSize: 1 });
    try {
      await expect(analyst.pool.query('SELECT count(*) FROM user_logins_unpartitioned')).resolves.toBeDefined();
    } finally {
      await analyst.close();
    }

    // A redelivery of an old message, stored by an ingestor after the migration: the move must keep one row.
    await database.pool.query(`INSERT INTO user_logins SELECT * FROM user_logins_unpartitioned WHERE message_id = 'm000000007'`);
    const controller = new AbortController();
    const progress: number[] = [];
    const first = await moveUnpartitioned(
      {
        pool: database.pool,
        signal: controller.signal,
        onProgress: (_step, done) => {
          progress.push(done);
          if (done > 0) controller.abort();
        },
      },
      3_000,
    );
    expect(first).toMatchObject({ found: true, completed: false, moved: 3_000 - 1, duplicates: 1 });
    // Interrupted between batches: every row is in exactly one of the two tables.
    expect((await count(database, 'user_logins')) + (await count(database, 'user_logins_unpartitioned'))).toBe(total);

    const second = await moveUnpartitioned({ pool: database.pool, onProgress: (_step, done) => progress.push(done) }, 3_000);
    expect(second).toMatchObject({ found: true, completed: true, moved: total - 3_000, duplicates: 0 });
    expect(await count(database, 'user_logins')).toBe(total);
    const { rows: dup } = await database.pool.query(`SELECT count(*)::int AS n FROM user_logins WHERE message_id = 'm000000007'`);
    expect(dup[0].n).toBe(1);
    expect(await count(database, 'user_logins_default')).toBe(0);
    const { rows: gone } = await database.pool.query(`SELECT to_regclass('user_logins_unpartitioned') AS t`);
    expect(gone[0].t).toBeNull();
    const { rows: perMonth } = await database.pool.query<{ p: string; n: number }>(
      `SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM user_logins GROUP BY 1 ORDER BY 1`,
    );
    expect(perMonth.map((r) => r.p)).toEqual(['user_logins_p202401', 'user_logins_p202402', 'user_logins_p202403']);
    // The resumed run counts what it found left: its bar ends full.
    expect(progress.at(-1)).toBe(total - 3_000);
    const { rows: audit } = await database.pool.query(`SELECT actor, action, field_counts FROM audit_log`);
    expect(audit).toEqual([{ actor: 'system:maintenance', action: 'partition.migrate', field_counts: { rows: total - 3_000, duplicates: 0 } }]);

    expect(await moveUnpartitioned({ pool: database.pool }, 3_000)).toMatchObject({ found: false });
  });
});
