import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAuditLog } from '../../../lib/audit/reader.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import type { Database } from '../../../db/client.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let testDb: TestDatabase;
let auditor: Database;

const TOKEN = (index: number) => `ip_v1_${String(index).padStart(43, 'A')}`;

function entry(tokens: string[], actor: string): AuditEntry {
  return {
    action: 'reveal', actor, roles: ['investigator'], clientAddress: null, requestId: null, purpose: 'reader test purpose', ticket: null,
    tokens, fieldCounts: {}, outcome: 'allowed', reason: null,
  };
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  auditor = testDb.as('auditor');
  const writer = new AuditWriter(testDb.as('reveal_api').pool);
  for (let row = 0; row < 50; row += 1) {
    await writer.append(entry(Array.from({ length: 100 }, (_, index) => TOKEN(row * 100 + index)), `actor-${row}`));
  }
  await testDb.owner.pool.query('ANALYZE audit_log');
});
afterAll(async () => {
  await auditor?.close();
  await testDb?.drop();
});

describe('audit log token filter', () => {
  it('finds every attempt that named a token, and only those', async () => {
    expect((await queryAuditLog(auditor.pool, { token: TOKEN(4242), limit: 10 })).entries.map((row) => row.actor)).toEqual(['actor-42']);
    expect((await queryAuditLog(auditor.pool, { token: TOKEN(999_999), limit: 10 })).entries).toEqual([]);
  });

  it('looks tokens up through the hashed GIN index and rechecks the row itself', async () => {
    const client = await auditor.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        'EXPLAIN SELECT seq FROM audit_log WHERE audit_token_keys(tokens) @> audit_token_keys(ARRAY[$1]::text[]) AND tokens @> ARRAY[$1]::text[]',
        [TOKEN(1)],
      );
      const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).toContain('audit_log_token_keys_idx');
      expect(plan).toMatch(/Filter: .*tokens @>/);
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });
});
