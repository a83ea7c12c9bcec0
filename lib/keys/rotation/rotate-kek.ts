import type { Database } from '../../../db/client.js';
import { TokenvaultError } from '../../errors.js';
import type { KeyProvider, KeyPurpose, WrappedKey } from '../key-provider.js';
import { ROTATE_KEK_LOCK_ID, withExclusiveJob } from './advisory-lock.js';
import { mapLimit } from './map-limit.js';
import { ROTATION_DEFAULTS } from './config.js';

export type KekTable = 'token_keys' | 'data_keys';

export interface KekProgress {
  table: KekTable;
  /** Rows of this table now under the new KEK (rewrapped in this run or before). */
  done: number;
  total: number;
}

export interface RotateKekOptions {
  batchSize?: number;
  /** Parallel ReEncrypt calls. */
  concurrency?: number;
  /** Stop after this many batches (tests, cautious first runs); the next run resumes. */
  maxBatches?: number;
  /** Checked between batches: an abort finishes the current batch, then stops. */
  signal?: AbortSignal;
  onProgress?: (progress: KekProgress) => void;
}

export interface RotateKekResult {
  /** The KEK every wrapped key is now under (undefined when there was nothing to rewrap). */
  kekId: string | undefined;
  rewrapped: Record<KekTable, number>;
  /** Rows that were already under the new KEK (an earlier, interrupted run). */
  alreadyCurrent: Record<KekTable, number>;
  /** Rows still under another KEK: 0 after a completed run. */
  remaining: number;
  batches: number;
  completed: boolean;
}

interface KeyRow {
  id: number;
  purpose: string;
  wrapped: Buffer;
  kekId: string;
}

interface TableSpec {
  table: KekTable;
  idColumn: string;
  purposeColumn: string;
  idType: string;
}

const TABLES: readonly TableSpec[] = [
  { table: 'token_keys', idColumn: 'version', purposeColumn: `'token-key'`, idType: 'smallint' },
  { table: 'data_keys', idColumn: 'id', purposeColumn: 'purpose', idType: 'int' },
];

const PURPOSES: readonly string[] = ['vault-data-key', 'token-key'] satisfies KeyPurpose[];

/**
 * Re-wraps every stored data key and token key under the provider's KEK (the NEW key),
 * with KMS ReEncrypt from the KEK recorded on each row: plaintext keys never leave KMS
 * and no vault value is touched (Vault calls this "rewrap"). Batched and resumable: rows
 * already under the new KEK are skipped, so an interrupted run is finished by running it
 * again. The old KEK may be disabled once `remaining` is 0 and the services use the new one.
 */
export async function rotateKek(database: Database, provider: KeyProvider, options: RotateKekOptions = {}): Promise<RotateKekResult> {
  return withExclusiveJob(database, ROTATE_KEK_LOCK_ID, 'keys:rotate-kek', () => run(database, provider, options));
}

async function run(database: Database, provider: KeyProvider, options: RotateKekOptions): Promise<RotateKekResult> {
  const batchSize = options.batchSize ?? ROTATION_DEFAULTS.batchSize;
  const concurrency = options.concurrency ?? ROTATION_DEFAULTS.kmsConcurrency;
  const result: RotateKekResult = {
    kekId: undefined,
    rewrapped: { token_keys: 0, data_keys: 0 },
    alreadyCurrent: { token_keys: 0, data_keys: 0 },
    remaining: 0,
    batches: 0,
    completed: false,
  };

  const rewrap = async (spec: TableSpec, row: KeyRow): Promise<WrappedKey & { row: KeyRow }> => {
    if (!PURPOSES.includes(row.purpose)) {
      throw new TokenvaultError('key_purpose_unknown', `${spec.table} row ${row.id} has unknown purpose '${row.purpose}'`);
    }
    const rewrapped = await provider.rewrapDataKey({ wrapped: row.wrapped, kekId: row.kekId }, row.purpose as KeyPurpose);
    return { ...rewrapped, row };
  };

  // The provider is configured with an alias or key id; the rows store the key ARN KMS
  // answers with. Rewrapping the first row tells us which ARN "the new key" is.
  const probe = await firstRow(database);
  if (probe === undefined) {
    result.completed = true;
    return result;
  }
  const probed = await rewrap(probe.spec, probe.row);
  const target = probed.kekId;
  result.kekId = target;
  if (probe.row.kekId !== target) {
    result.rewrapped[probe.spec.table] += await store(database, probe.spec, [probed]);
  }

  for (const spec of TABLES) {
    result.alreadyCurrent[spec.table] = (await count(database, spec, target)) - result.rewrapped[spec.table];
  }

  const stopRequested = (): boolean =>
    options.signal?.aborted === true || (options.maxBatches !== undefined && result.batches >= options.maxBatches);

  // Passes repeat until one finds nothing: a service still configured with the old KEK
  // may have added keys meanwhile (point the services at the new key first; see docs).
  for (let foundInPass = true; foundInPass; ) {
    foundInPass = false;
    for (const spec of TABLES) {
      const total = await count(database, spec, undefined);
      let done = await count(database, spec, target);
      options.onProgress?.({ table: spec.table, done, total });
      let after = -1;
      for (;;) {
        if (stopRequested()) {
          result.remaining = await remaining(database, target);
          return result;
        }
        const rows = await pendingRows(database, spec, target, after, batchSize);
        if (rows.length === 0) break;
        foundInPass = true;
        const rewrapped = await mapLimit(rows, concurrency, async (row) => {
          const out = await rewrap(spec, row);
          // An alias re-pointed mid-run would otherwise make every pass find "pending" rows forever.
          if (out.kekId !== target) {
            throw new TokenvaultError('kek_changed', `KMS_KEY_ID now resolves to ${out.kekId}, not ${target}: it changed during the rotation; run it again`);
          }
          return out;
        });
        const stored = await store(database, spec, rewrapped);
        result.rewrapped[spec.table] += stored;
        result.batches += 1;
        done += stored;
        after = rows[rows.length - 1]?.id ?? after;
        options.onProgress?.({ table: spec.table, done, total: Math.max(total, done) });
      }
    }
  }
  result.remaining = await remaining(database, target);
  result.completed = result.remaining === 0;
  return result;
}

async function firstRow(database: Database): Promise<{ spec: TableSpec; row: KeyRow } | undefined> {
  for (const spec of TABLES) {
    const [row] = await pendingRows(database, spec, undefined, -1, 1);
    if (row !== undefined) return { spec, row };
  }
  return undefined;
}

async function pendingRows(database: Database, spec: TableSpec, target: string | undefined, after: number, limit: number): Promise<KeyRow[]> {
  const { rows } = await database.pool.query<{ id: number; purpose: string; wrapped: Buffer; kek_id: string }>(
    `SELECT ${spec.idColumn} AS id, ${spec.purposeColumn} AS purpose, wrapped_key AS wrapped, kek_id
       FROM ${spec.table}
      WHERE ${spec.idColumn} > $1 AND ($2::text IS NULL OR kek_id <> $2)
      ORDER BY ${spec.idColumn}
      LIMIT $3`,
    [after, target ?? null, limit],
  );
  return rows.map((row) => ({ id: row.id, purpose: row.purpose, wrapped: row.wrapped, kekId: row.kek_id }));
}

/** Writes a batch in one statement; a row changed meanwhile (another KEK already) is left alone. */
async function store(database: Database, spec: TableSpec, batch: (WrappedKey & { row: KeyRow })[]): Promise<number> {
  const { rowCount } = await database.pool.query(
    `UPDATE ${spec.table} AS k
        SET wrapped_key = u.wrapped, kek_id = u.kek_id, rewrapped_at = now()
       FROM unnest($1::${spec.idType}[], $2::bytea[], $3::text[], $4::text[]) AS u(id, wrapped, kek_id, old_kek_id)
      WHERE k.${spec.idColumn} = u.id AND k.kek_id = u.old_kek_id`,
    [batch.map((b) => b.row.id), batch.map((b) => b.wrapped), batch.map((b) => b.kekId), batch.map((b) => b.row.kekId)],
  );
  return rowCount ?? 0;
}

async function count(database: Database, spec: TableSpec, kekId: string | undefined): Promise<number> {
  const { rows } = await database.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM ${spec.table} WHERE $1::text IS NULL OR kek_id = $1`,
    [kekId ?? null],
  );
  return Number(rows[0]?.n ?? 0);
}

async function remaining(database: Database, target: string): Promise<number> {
  const { rows } = await database.pool.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM token_keys WHERE kek_id <> $1) + (SELECT count(*) FROM data_keys WHERE kek_id <> $1) AS n`,
    [target],
  );
  return Number(rows[0]?.n ?? 0);
}
