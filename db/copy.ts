import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';

/**
 * `COPY … FROM STDIN` on a checked-out connection (pg-copy-streams): sends the payload, resolves
 * with the rows PostgreSQL copied, rejects with the server's error (SQLSTATE in `code`) when the
 * COPY fails, which leaves the transaction aborted (roll back to a savepoint to go on).
 */
export async function copyIn(client: pg.PoolClient, statement: string, payload: string | Buffer | readonly (string | Buffer)[]): Promise<number> {
  const stream = client.query(copyFromStdin(statement));
  const chunks = typeof payload === 'string' || Buffer.isBuffer(payload) ? [payload] : payload;
  await pipeline(Readable.from(chunks, { objectMode: false }), stream);
  return stream.rowCount;
}

/**
 * One value in COPY's text format: `\N` for null, backslash, tab, newline and carriage return
 * escaped (the only characters the format gives a meaning), bytea as `\\x<hex>`.
 */
export function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPED, (c) => ESCAPES[c] ?? c) : value;
}

export function copyBytea(value: Buffer | null): string {
  return value === null ? '\\N' : `\\\\x${value.toString('hex')}`;
}

export function copyNumber(value: number | null): string {
  return value === null ? '\\N' : String(value);
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPED = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
