import type pg from 'pg';
import { ConnectionLostError } from './errors.js';

/** Marks the checked-out connection as unusable: it is destroyed instead of returned to the pool. */
export type Discard = (reason: Error) => void;

/**
 * Runs `work` on one checked-out connection and always gives it back. While it is checked out,
 * pg-pool listens for nothing on it: a server that terminates the connection (failover, fast
 * shutdown: SQLSTATE 57P01) between two queries would raise an unhandled 'error' event and
 * stop the process. Here that event is caught; the work fails with a transient
 * ConnectionLostError and the connection is destroyed, so the pool opens a fresh one later.
 */
export async function withClient<T>(pool: pg.Pool, work: (client: pg.PoolClient, discard: Discard) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let lost: Error | undefined;
  let broken: Error | undefined;
  const onError = (error: Error): void => {
    lost ??= error;
  };
  client.on('error', onError);
  try {
    return await work(client, (reason) => {
      broken ??= reason;
    });
  } catch (error) {
    if (lost !== undefined) throw new ConnectionLostError(lost);
    throw error;
  } finally {
    client.off('error', onError);
    client.release(lost ?? broken);
  }
}

export interface TransactionOptions {
  /** Statements sent with BEGIN in the same round trip (e.g. `SET LOCAL lock_timeout = 5000`). */
  begin?: string;
}

/**
 * BEGIN, `work`, COMMIT on one connection; ROLLBACK when `work` or COMMIT fails. A connection
 * whose ROLLBACK failed is in an unknown state and is destroyed rather than reused.
 */
export async function withTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  return withClient(pool, async (client, discard) => {
    try {
      await client.query(options.begin === undefined ? 'BEGIN' : `BEGIN; ${options.begin}`);
      const value = await work(client);
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await rollback(client, discard);
      throw error;
    }
  });
}

/** Rolls back an open (or aborted) transaction; a connection that cannot even do that is discarded. */
export async function rollback(client: pg.PoolClient, discard: Discard): Promise<void> {
  await client.query('ROLLBACK').catch((rollbackError: unknown) => {
    discard(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)));
  });
}
