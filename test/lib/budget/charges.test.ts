import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTransaction } from '../../../db/transaction.js';
import type { Database } from '../../../db/client.js';
import type { AuditEntry } from '../../../lib/audit/entry.js';
import { insertAudit } from '../../../lib/audit/insert.js';
import { AuditWriter } from '../../../lib/audit/writer.js';
import { chargeBudget, type BudgetedAuditWriter } from '../../../lib/budget/charges.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let testDb: TestDatabase;
let reveal: Database;

function entry(actor: string, reason: string | null = null): AuditEntry {
  return { action: 'erase', actor, roles: ['privacy'], clientAddress: null, requestId: null, purpose: 'insert test purpose', ticket: null, tokens: [], fieldCounts: {}, outcome: 'allowed', reason };
}

beforeAll(async () => {
  testDb = await createTestDatabase();
  reveal = testDb.as('reveal_api');
});
afterAll(async () => {
  await testDb?.drop();
});

describe('chargeBudget', () => {
  it("charges within the caller's transaction and refuses what no longer fits", async () => {
    const charge = { actor: 'budgeted', amount: 3, limits: [{ budget: 'day' as const, limit: 5 }] };
    const first = await withTransaction(reveal.pool, async (client) => {
      const decision = await chargeBudget(client, charge);
      await insertAudit(client, entry('budgeted', 'revealed=3'));
      return decision;
    });
    expect(first).toMatchObject({ granted: true, standings: [{ budget: 'day', used: 3, remaining: 2 }] });
    const second = await withTransaction(reveal.pool, (client) => chargeBudget(client, charge));
    expect(second).toMatchObject({ granted: false, exhausted: { budget: 'day', remaining: 2 } });
  });
});

describe('charged appends', () => {
  it('are refused, and write nothing, by an audit writer built without a charger', async () => {
    // Typed as a budgeted writer on purpose: only the missing charger stands in the way.
    const writer = new AuditWriter(reveal.pool) as unknown as BudgetedAuditWriter;
    const charge = { actor: 'no-charger', amount: 1, limits: [{ budget: 'day' as const, limit: 5 }] };
    await expect(writer.appendCharged(entry('no-charger'), { charge, refused: () => entry('no-charger', 'refused') })).rejects.toThrow(/no charger/);
    await writer.close();
    const { rows } = await testDb.owner.pool.query('SELECT 1 FROM audit_log WHERE actor = $1', ['no-charger']);
    expect(rows).toEqual([]);
  });
});
