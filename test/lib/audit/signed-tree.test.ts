import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestSignedTreeSize, SignedTreeSizeCache } from '../../../lib/audit/signed-tree.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let testDb: TestDatabase;

beforeAll(async () => {
  testDb = await createTestDatabase();
});
afterAll(async () => {
  await testDb?.drop();
});

async function storeCheckpoint(index: number, seq: number): Promise<void> {
  await testDb.owner.pool.query("INSERT INTO audit_checkpoints (idx, seq, body, signature) VALUES ($1, $2, '{}', '\\x00')", [index, seq]);
}

describe('the newest signed tree size (the default size of proofs)', () => {
  it('is the newest checkpoint\'s, read at most once per interval unless this process just signed one', async () => {
    let now = 0;
    const cache = new SignedTreeSizeCache(testDb.as('auditor').pool, 1_000, () => now);
    expect(await latestSignedTreeSize(testDb.owner.pool)).toBeUndefined();
    expect(await cache.get()).toBeUndefined();

    await storeCheckpoint(1, 5);
    expect(await latestSignedTreeSize(testDb.owner.pool)).toEqual({ index: 1, size: 5 });
    now = 999;
    expect(await cache.get()).toBeUndefined();
    now = 1_000;
    expect(await cache.get()).toEqual({ index: 1, size: 5 });

    await storeCheckpoint(2, 9);
    expect(await cache.get()).toEqual({ index: 1, size: 5 });
    cache.invalidate();
    expect(await cache.get()).toEqual({ index: 2, size: 9 });
  });
});
