import type pg from 'pg';
import { to as copyToStdout } from 'pg-copy-streams';
import { copyIn } from '../../db/copy.js';

/**
 * The database's ceiling for the same final rows: what the sink stored, read back with COPY … TO
 * (text format, kept as the raw chunks: no row objects in memory) and written again with one
 * COPY … FROM per table in one transaction, after a TRUNCATE.
 */
export const FINAL_ROWS = {
  pii_vault: 'token, field, ciphertext, data_key_id, token_key_version, created_at',
  user_logins:
    'message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, app_version_major, app_version_minor, app_version_patch, create_date, sent_at, ingested_at, token_key_version, row_mac, row_mac_key_version',
  quarantine: 'message_id, reasons, body_ciphertext, data_key_id, body_bytes, sent_at, receive_count, received_at',
} as const;

export interface CopyPayload {
  table: string;
  columns: string;
  chunks: Buffer[];
}

export async function readFinalRows(pool: pg.Pool): Promise<CopyPayload[]> {
  const client = await pool.connect();
  try {
    const payloads: CopyPayload[] = [];
    for (const [table, columns] of Object.entries(FINAL_ROWS)) {
      const chunks: Buffer[] = [];
      for await (const chunk of client.query(copyToStdout(`COPY (SELECT ${columns} FROM ${table}) TO STDOUT`))) chunks.push(chunk as Buffer);
      payloads.push({ table, columns, chunks });
    }
    return payloads;
  } finally {
    client.release();
  }
}

/** Writes the payloads in one transaction; returns the seconds the COPYs and the COMMIT took. */
export async function copyFinalRows(pool: pg.Pool, payloads: readonly CopyPayload[]): Promise<number> {
  const client = await pool.connect();
  try {
    const started = performance.now();
    await client.query('BEGIN');
    for (const { table, columns, chunks } of payloads) await copyIn(client, `COPY ${table} (${columns}) FROM STDIN`, chunks);
    await client.query('COMMIT');
    return (performance.now() - started) / 1000;
  } finally {
    client.release();
  }
}
