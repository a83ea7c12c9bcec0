import type { Database } from '../../../db/client.js';
import { TokenvaultError } from '../../errors.js';

// Arbitrary constants, one per maintenance job: two runs of the same job on one database
// would fight over the same rows, different jobs may overlap.
export const ROTATE_KEK_LOCK_ID = 7_468_101;
export const ROTATE_TOKEN_KEY_LOCK_ID = 7_468_102;
export const MAINTENANCE_LOCK_ID = 7_468_103;

/**
 * Runs `work` while holding a session-level advisory lock on a dedicated connection.
 * A second run fails at once instead of waiting: an operator who starts the job twice
 * learns it is already running.
 */
export async function withExclusiveJob<T>(database: Database, lockId: number, job: string, work: () => Promise<T>): Promise<T> {
  const client = await database.pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [lockId]);
    if (rows[0]?.locked !== true) {
      throw new TokenvaultError('job_already_running', `${job} is already running against this database (advisory lock ${lockId} is held)`);
    }
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [lockId]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}
