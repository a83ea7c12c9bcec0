import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { callerValueRefused, HttpError } from '../../../../services/reveal-api/http/errors.js';

let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ connectionString: inject('postgresAdminUrl') });
  await client.connect();
});
afterAll(async () => {
  await client?.end();
});

async function refusal(sql: string, values: unknown[]): Promise<unknown> {
  return client.query(sql, values).then(
    () => {
      throw new Error('PostgreSQL accepted the value');
    },
    (error: unknown) => error,
  );
}

describe('callerValueRefused', () => {
  it.each([
    ['a year 0000 timestamp (22008)', 'SELECT $1::timestamptz', ['0000-01-01T00:00:00Z'], '22008'],
    ['NUL in text (22021)', 'SELECT $1::text', ['a\u0000b'], '22021'],
    ['a malformed number (22P02)', 'SELECT $1::int', ['12x'], '22P02'],
  ])('turns a data exception from PostgreSQL for %s into a 400 that does not quote the value', async (_name, sql, values, sqlstate) => {
    const error = await refusal(sql, values);
    expect((error as { code: string }).code).toBe(sqlstate);
    const mapped = callerValueRefused(error, 'a filter value');
    expect(mapped).toBeInstanceOf(HttpError);
    expect(mapped).toMatchObject({ statusCode: 400, code: 'invalid_request', message: `the database refused a filter value (SQLSTATE ${sqlstate}); check the values sent` });
    expect((mapped as Error).message).not.toContain('12x');
  });

  it('leaves every other error as it was (a missing table stays an internal error)', async () => {
    const error = await refusal('SELECT * FROM no_such_table WHERE x = $1', [1]);
    expect(callerValueRefused(error, 'a filter value')).toBe(error);
    const plain = new Error('boom');
    expect(callerValueRefused(plain, 'a filter value')).toBe(plain);
  });
});
