import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { createDatabaseIfMissing } from '../../../local/embedded-postgres.js';
import { migrate } from '../../../lib/runtime/migrate.js';

const adminUrl = inject('postgresAdminUrl');
const name = `t_migrate_${randomBytes(6).toString('hex')}`;
let owner: Database | undefined;

afterAll(async () => {
  await owner?.close();
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await client.end();
});

describe('migrate (lib/runtime)', () => {
  it('brings an empty database to the schema, then covers the audit log with the Merkle tree; again, it changes nothing', async () => {
    await createDatabaseIfMissing(adminUrl, name);
    owner = createDatabase({ url: adminUrl.replace(/\/postgres$/, `/${name}`), role: undefined, poolSize: 2 });
    const events: string[] = [];
    const first = await migrate(owner, {
      onMigrated: () => events.push('migrated'),
      onTreeProgress: (step) => events.push(`tree ${step.from}..${step.size}${step.caughtUp ? ' caught up' : ''}`),
    });
    expect(events).toEqual(['migrated', 'tree 0..0 caught up']);
    expect(first).toMatchObject({ from: 0, size: 0, caughtUp: true });
    const { rows } = await owner.pool.query<{ tables: string }>(
      "SELECT count(*) AS tables FROM information_schema.tables WHERE table_schema = 'public' AND table_name IN ('user_logins', 'pii_vault', 'audit_log', 'quarantine')",
    );
    expect(Number(rows[0]?.tables)).toBe(4);
    await expect(migrate(owner)).resolves.toMatchObject({ from: 0, size: 0, caughtUp: true });
  });
});
