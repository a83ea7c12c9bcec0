import { threadId } from 'node:worker_threads';
import { afterAll, describe, expect } from 'vitest';
import { RowChecker } from '../../../../../services/reveal-api/audit/checkpoints/row-checker.js';
import { revealTestFor } from '../../../../support/reveal-fixture.js';
import { bearer, PURPOSE } from '../../../../support/reveal-harness.js';
import { tamperAuditLog } from '../../../../support/tamper-audit-log.js';

const it = revealTestFor();

let checker: RowChecker;

// Twelve audit rows to check, and a checker on the harness's database.
it.beforeAll(async ({ harness, sample: { ip } }) => {
  const headers = bearer(await harness.token('alice', ['investigator']));
  for (let index = 0; index < 12; index += 1) {
    await harness.app.inject({ method: 'POST', url: '/reveal', headers, payload: { tokens: [ip.token], purpose: PURPOSE } });
  }
  checker = new RowChecker({ url: harness.testDb.url, role: 'reveal_api', poolSize: 1 });
});
afterAll(async () => {
  await checker?.close();
});

describe('row checker (the re-hash before a checkpoint, issue 17 finding 4)', () => {
  it('re-hashes the rows against their chain and stored leaves on a worker thread, not the thread that serves requests', async () => {
    const result = await checker.check({ fromSeq: 1, toSeq: 12 });
    expect(result).toMatchObject({ ok: true, checked: 12 });
    expect(result.threadId).toBeGreaterThan(0);
    expect(result.threadId).not.toBe(threadId);
    expect(await checker.check({ fromSeq: 5, toSeq: 12 })).toMatchObject({ ok: true, checked: 8 });
  });

  it('names a row whose content no longer matches its hash, or its stored leaf, or that is missing', async ({ harness }) => {
    const { rows } = await harness.testDb.owner.pool.query<{ hash: Buffer }>('SELECT hash FROM audit_tree_nodes WHERE level = 0 AND idx = 6');
    await tamperAuditLog(harness.testDb.owner.pool, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 4");
    expect(await checker.check({ fromSeq: 1, toSeq: 12 })).toMatchObject({ ok: false, failure: { seq: 4, message: 'content does not match its hash (row edited)' } });
    await tamperAuditLog(harness.testDb.owner.pool, "UPDATE audit_log SET actor = 'alice' WHERE seq = 4; UPDATE audit_tree_nodes SET hash = decode(repeat('00', 32), 'hex') WHERE level = 0 AND idx = 6");
    expect(await checker.check({ fromSeq: 1, toSeq: 12 })).toMatchObject({ ok: false, failure: { seq: 7, message: 'content does not match its stored leaf (row or tree edited)' } });
    await tamperAuditLog(harness.testDb.owner.pool, `UPDATE audit_tree_nodes SET hash = decode('${rows[0]!.hash.toString('hex')}', 'hex') WHERE level = 0 AND idx = 6`);
    expect(await checker.check({ fromSeq: 1, toSeq: 13 })).toMatchObject({ ok: false, failure: { seq: 13, message: 'rows end at seq 12, expected 13' } });
    expect(await checker.check({ fromSeq: 1, toSeq: 12 })).toMatchObject({ ok: true });
  });
});
