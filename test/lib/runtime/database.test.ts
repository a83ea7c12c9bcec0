import { describe, expect, inject, it } from 'vitest';
import { DatabaseUnreachableError, openDatabase } from '../../../lib/runtime/database.js';

describe('openDatabase (against the real test server)', () => {
  it('returns a pool that has answered once when asked to reach the database', async () => {
    const database = await openDatabase({ url: inject('postgresAdminUrl'), role: undefined, poolSize: 1 }, { reach: true });
    try {
      expect(database.pool.totalCount).toBe(1);
      await expect(database.pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    } finally {
      await database.close();
    }
  });

  it('stops with one sentence naming DATABASE_URL when nothing listens, having closed its pool', async () => {
    const failure = await openDatabase({ url: 'postgres://tokenvault@127.0.0.1:1/tokenvault', role: undefined, poolSize: 1 }, { reach: true }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(DatabaseUnreachableError);
    expect((failure as DatabaseUnreachableError).message).toBe(
      'cannot reach the database at 127.0.0.1:1/tokenvault: connection refused (is PostgreSQL running on that host and port?) (DATABASE_URL)',
    );
    expect((failure as DatabaseUnreachableError).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('does not connect unless asked: a service that waits for its database starts without it', async () => {
    const database = await openDatabase({ url: 'postgres://tokenvault@127.0.0.1:1/tokenvault', role: undefined, poolSize: 1 });
    expect(database.pool.totalCount).toBe(0);
    await database.close();
  });
});
