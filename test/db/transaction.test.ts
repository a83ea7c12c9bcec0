import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../db/client.js';
import { ConnectionLostError, isTransient } from '../../db/errors.js';
import { withClient, withTransaction } from '../../db/transaction.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let testDb: TestDatabase;
let database: Database;
const warnings: string[] = [];
let onWarning: () => void = () => undefined;

beforeAll(async () => {
  testDb = await createTestDatabase();
  await testDb.owner.pool.query('CREATE TABLE tx_probe (id int PRIMARY KEY)');
  database = createDatabase(
    { url: testDb.url, role: undefined, poolSize: 3 },
    {
      applicationName: 'tx-probe',
      logger: {
        warn: (_object, message) => {
          warnings.push(message);
          onWarning();
        },
      },
    },
  );
});
afterAll(async () => {
  await database?.close();
  await testDb?.drop();
});

/** What a failover does to a connection: the server ends the backend (SQLSTATE 57P01 to the client). */
async function terminate(pid: number): Promise<void> {
  await testDb.owner.pool.query('SELECT pg_terminate_backend($1)', [pid]);
}

async function backendPid(client: { query: Database['pool']['query'] }): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]?.pid ?? 0;
}

const nextWarning = () => new Promise<void>((resolve) => (onWarning = resolve));

describe('withTransaction', () => {
  it('commits the work and returns its value', async () => {
    const value = await withTransaction(database.pool, async (client) => {
      await client.query('INSERT INTO tx_probe VALUES (1)');
      return 'done';
    });
    expect(value).toBe('done');
    const { rows } = await testDb.owner.pool.query('SELECT id FROM tx_probe WHERE id = 1');
    expect(rows).toHaveLength(1);
  });

  it('rolls the work back when it throws and returns a usable connection to the pool', async () => {
    const failure = new Error('work failed');
    await expect(
      withTransaction(database.pool, async (client) => {
        await client.query('INSERT INTO tx_probe VALUES (2)');
        throw failure;
      }),
    ).rejects.toBe(failure);
    const { rows } = await testDb.owner.pool.query('SELECT id FROM tx_probe WHERE id = 2');
    expect(rows).toHaveLength(0);
    expect(database.pool.idleCount).toBeGreaterThan(0);
    await expect(database.pool.query('SELECT 1')).resolves.toBeDefined();
  });

  it('turns a connection the server terminates mid-transaction into a transient ConnectionLostError, not a crash', async () => {
    const totalBefore = database.pool.totalCount;
    const attempt = withTransaction(database.pool, async (client) => {
      await client.query('INSERT INTO tx_probe VALUES (3)');
      const lost = new Promise((resolve) => client.once('error', resolve));
      await terminate(await backendPid(client));
      // Idle between two statements when the server goes: the case pg-pool leaves unhandled.
      await lost;
      await client.query('INSERT INTO tx_probe VALUES (4)');
    });
    const error = await attempt.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(isTransient(error)).toBe(true);
    const { rows } = await testDb.owner.pool.query('SELECT id FROM tx_probe WHERE id IN (3, 4)');
    expect(rows).toHaveLength(0);
    // The broken connection was destroyed, not reused: the next transaction gets a fresh one.
    expect(database.pool.totalCount).toBeLessThanOrEqual(totalBefore);
    await expect(withTransaction(database.pool, (client) => client.query('INSERT INTO tx_probe VALUES (5)'))).resolves.toBeDefined();
  });
});

describe('createDatabase', () => {
  it('logs, and survives, a checked-out connection the server terminates while nobody listens on it', async () => {
    const client = await database.pool.connect();
    const warned = nextWarning();
    await terminate(await backendPid(client));
    await warned;
    expect(warnings.at(-1)).toMatch(/connection lost while in use/);
    await expect(client.query('SELECT 1')).rejects.toSatisfy(isTransient);
    client.release(true);
    await expect(database.pool.query('SELECT 1')).resolves.toBeDefined();
  });

  it('logs, and survives, idle pooled connections the server terminates', async () => {
    const pids = await withClient(database.pool, (client) => backendPid(client));
    const warned = nextWarning();
    await terminate(pids);
    await warned;
    expect(warnings.at(-1)).toMatch(/idle database connection lost/);
    await expect(database.pool.query('SELECT 1')).resolves.toBeDefined();
  });
});
