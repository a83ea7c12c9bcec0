import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { describeDatabaseFailure } from '../../db/connection-error.js';

async function connectError(url: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.end();
  } catch (error) {
    return error;
  }
  throw new Error(`connected to ${url}`);
}

function withUrl(change: (url: URL) => void): string {
  const url = new URL(inject('postgresAdminUrl'));
  change(url);
  return url.toString();
}

describe('describeDatabaseFailure (against the real test server)', () => {
  it('says authentication failed naming the user, not "cannot reach", for a wrong password, and never prints it', async () => {
    const url = withUrl((u) => {
      u.password = 'wrong-secret-4711';
    });
    const message = describeDatabaseFailure(await connectError(url), url);
    const user = new URL(url).username;
    expect(message).toMatch(new RegExp(`^authentication failed for user "${user}" at 127\\.0\\.0\\.1:\\d+/postgres: wrong password \\(DATABASE_URL\\)$`));
    expect(message).not.toContain('wrong-secret-4711');
  });

  it('names a database that does not exist', async () => {
    const url = withUrl((u) => {
      u.pathname = '/no_such_db';
    });
    expect(describeDatabaseFailure(await connectError(url), url)).toMatch(/^database "no_such_db" does not exist at 127\.0\.0\.1:\d+ \(DATABASE_URL/);
  });

  it('says cannot reach, with host and port, when nothing listens', async () => {
    const url = 'postgres://tokenvault:secret@127.0.0.1:1/tokenvault';
    const message = describeDatabaseFailure(await connectError(url), url);
    expect(message).toBe('cannot reach the database at 127.0.0.1:1/tokenvault: connection refused (is PostgreSQL running on that host and port?) (DATABASE_URL)');
  });

  it('finds the code on a wrapped cause', () => {
    const wrapped = new Error('start failed', { cause: Object.assign(new Error('x'), { code: '28P01' }) });
    expect(describeDatabaseFailure(wrapped, 'postgres://ana@db:5433/app')).toBe('authentication failed for user "ana" at db:5433/app: wrong password (DATABASE_URL)');
  });
});
