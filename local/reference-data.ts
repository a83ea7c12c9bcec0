import { readFile } from 'node:fs/promises';
import type pg from 'pg';

/**
 * The reference messages the database does not hold yet: a well-formed line whose user_id has
 * no row in user_logins, and the malformed lines while nothing is quarantined. The database
 * decides (not a marker file), so a deleted cluster or a start stopped before the queue drained
 * gets the missing messages back, and a full database gets none twice.
 */
export async function missingReferenceLines(pool: pg.Pool, file: string): Promise<string[]> {
  const lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line.length > 0);
  const userIds = lines.map(userIdOf);
  const known = await pool.query<{ user_id: string }>('SELECT DISTINCT user_id FROM user_logins WHERE user_id = ANY($1::text[])', [
    userIds.filter((id): id is string => id !== undefined),
  ]);
  const stored = new Set(known.rows.map((row) => row.user_id));
  const quarantined = await pool.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM quarantine) AS any');
  const quarantineEmpty = quarantined.rows[0]?.any !== true;
  return lines.filter((_, index) => {
    const id = userIds[index];
    return id === undefined ? quarantineEmpty : !stored.has(id);
  });
}

function userIdOf(line: string): string | undefined {
  try {
    const value = (JSON.parse(line) as { user_id?: unknown }).user_id;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
