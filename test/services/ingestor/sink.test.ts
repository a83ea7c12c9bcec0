import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../../../lib/crypto/aead.js';
import { quarantineAad, vaultAad } from '../../../lib/crypto/vault-context.js';
import { DecryptionError } from '../../../lib/errors.js';
import { DataKeyRing } from '../../../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../../lib/keys/token-keys.js';
import type { Tokenizer } from '../../../lib/crypto/tokens.js';
import { KnownTokens } from '../../../services/ingestor/known-tokens.js';
import type { InboundMessage } from '../../../services/ingestor/message.js';
import { createSink, type Sink } from '../../../services/ingestor/sink.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { loginEvent, type LoginFields } from '../../support/ingestor-harness.js';

let testDb: TestDatabase;
let ring: DataKeyRing;
let tokenizer: Tokenizer;
let known: KnownTokens;
let sink: Sink;

beforeAll(async () => {
  testDb = await createTestDatabase();
  const ingestorDb = testDb.as('ingestor');
  const keys = LocalKeyring.fromKey(randomBytes(32));
  ring = new DataKeyRing(ingestorDb.db, keys, { maxUses: 1_000_000, maxAgeMs: 3_600_000 });
  tokenizer = await loadActiveTokenizer(ingestorDb.db, keys);
  known = new KnownTokens(1000);
  // The sink runs as the least-privilege ingestor role, as in production.
  sink = createSink({ database: ingestorDb, dataKeys: ring, tokenizer: () => tokenizer, knownTokens: known });
});
afterAll(async () => {
  await testDb?.drop();
});

function message(fields: LoginFields | string, sentAt = new Date()): InboundMessage {
  return { messageId: randomUUID(), body: typeof fields === 'string' ? fields : JSON.stringify(fields), sentAt, receiveCount: 1 };
}

async function row<T>(sql: string, params: unknown[]): Promise<T> {
  const { rows } = await testDb.owner.pool.query(sql, params);
  return rows[0] as T;
}

async function count(table: 'user_logins' | 'quarantine', ids: string[]): Promise<number> {
  const { rows } = await testDb.owner.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE message_id = ANY($1)`, [ids]);
  return rows[0].n as number;
}

/** Resolves once `count` backends of this database wait for a lock. */
async function waitForLockWaiter(count = 1): Promise<void> {
  for (;;) {
    const { rows } = await testDb.owner.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if ((rows[0] as { n: number }).n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('sink: validate, tokenise, encrypt, store in one transaction', () => {
  it('stores the login with tokens, and the originals only encrypted in the vault', async () => {
    const event = loginEvent({ ip: '2001:0DB8::0001', device_id: '593-47-5928' });
    const m = message(event);
    const result = await sink.write([m]);
    expect(result).toMatchObject({ received: 1, stored: 1, duplicates: 0, quarantined: 0 });

    const login = await row<{ masked_ip: string; masked_device_id: string; token_key_version: number }>(
      'SELECT * FROM user_logins WHERE message_id = $1',
      [m.messageId],
    );
    expect(login.masked_ip).toBe(tokenizer.tokenize('ip', '2001:db8::1'));
    expect(login.masked_device_id).toMatch(/^device_id_v1_[A-Za-z0-9_-]{43}$/);
    expect(login.token_key_version).toBe(tokenizer.keyVersion);

    for (const [token, original] of [
      [login.masked_ip, '2001:db8::1'],
      [login.masked_device_id, '593-47-5928'],
    ] as const) {
      const vault = await row<{ ciphertext: Buffer; data_key_id: number }>('SELECT * FROM pii_vault WHERE token = $1', [token]);
      expect(vault.ciphertext.includes(Buffer.from(original))).toBe(false);
      const plaintext = await ring.decrypt(vault.data_key_id, vault.ciphertext, vaultAad(token));
      expect(plaintext.toString('utf8')).toBe(original);
    }
  });

  it('gives equal IPs equal tokens whatever their spelling', async () => {
    const a = message(loginEvent({ ip: '2001:db8::abcd' }));
    const b = message(loginEvent({ ip: '2001:0DB8:0:0::ABCD' }));
    await sink.write([a, b]);
    const { rows } = await testDb.owner.pool.query('SELECT masked_ip FROM user_logins WHERE message_id = ANY($1)', [[a.messageId, b.messageId]]);
    expect(rows).toHaveLength(2);
    expect(rows[0].masked_ip).toBe(rows[1].masked_ip);
  });

  it('refuses tampered ciphertext and a ciphertext moved to another token', async () => {
    const m = message(loginEvent());
    await sink.write([m]);
    const login = await row<{ masked_ip: string; masked_device_id: string }>('SELECT * FROM user_logins WHERE message_id = $1', [m.messageId]);
    const ip = await row<{ ciphertext: Buffer; data_key_id: number }>('SELECT * FROM pii_vault WHERE token = $1', [login.masked_ip]);
    const tampered = Buffer.from(ip.ciphertext);
    tampered[14] = (tampered[14] ?? 0) ^ 0x01;
    await expect(ring.decrypt(ip.data_key_id, tampered, vaultAad(login.masked_ip))).rejects.toBeInstanceOf(DecryptionError);
    // Swapped rows: the ip ciphertext presented as the device_id's.
    await expect(ring.decrypt(ip.data_key_id, ip.ciphertext, vaultAad(login.masked_device_id))).rejects.toBeInstanceOf(DecryptionError);
  });

  it('stores a redelivered message once', async () => {
    const m = message(loginEvent());
    const first = await sink.write([m]);
    const again = await sink.write([m, { ...m }]);
    expect(first.stored).toBe(1);
    expect(again).toMatchObject({ received: 1, stored: 0, duplicates: 1 });
    expect(await row<{ n: number }>('SELECT count(*)::int AS n FROM user_logins WHERE message_id = $1', [m.messageId])).toEqual({ n: 1 });
  });

  it('counts duplicates per batch when concurrent batches share one transaction', async () => {
    // One writer: concurrent writes are grouped into one transaction while another commits.
    const grouped = createSink({ database: testDb.as('ingestor'), dataKeys: ring, tokenizer: () => tokenizer, knownTokens: known, writers: 1 });
    const seenLogin = message(loginEvent());
    const seenBad = message('{"not": "a login"}');
    await grouped.write([seenLogin, seenBad]);
    const newLogin = message(loginEvent());
    const newBad = message('[]');
    const [, redelivered, fresh] = await Promise.all([
      grouped.write([message(loginEvent())]),
      grouped.write([seenLogin, seenBad]),
      grouped.write([newLogin, newBad]),
    ]);
    expect(redelivered).toMatchObject({ stored: 0, quarantined: 0, duplicates: 2 });
    expect(fresh).toMatchObject({ stored: 1, quarantined: 1, duplicates: 0, reasons: { not_an_object: 1 } });
    expect(await count('user_logins', [seenLogin.messageId, newLogin.messageId])).toBe(2);
    expect(await count('quarantine', [seenBad.messageId, newBad.messageId])).toBe(2);
  });

  it.each([
    [2, ['second', 'first']],
    [1, ['first', 'second']],
  ] as const)('with %i writer(s), a batch commits while another transaction is blocked only if a writer is free', async (writers, order) => {
    const concurrent = createSink({ database: testDb.as('ingestor'), dataKeys: ring, tokenizer: () => tokenizer, knownTokens: known, writers });
    const blocked = message(loginEvent());
    // Another session holds an uncommitted row with the same message id: the first batch's insert waits for it.
    const other = await testDb.owner.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, app_version, create_date, sent_at, token_key_version)
         VALUES ($1, 'u', 'ios', 'ip_v1_x', 'device_id_v1_x', '1', now(), now(), 1)`,
        [blocked.messageId],
      );
      const settled: string[] = [];
      const first = concurrent.write([blocked]).then((result) => {
        settled.push('first');
        return result;
      });
      await waitForLockWaiter();
      const second = concurrent.write([message(loginEvent())]).then((result) => {
        settled.push('second');
        return result;
      });
      if (writers > 1) expect(await second).toMatchObject({ stored: 1 });
      await other.query('ROLLBACK');
      const [firstResult, secondResult] = await Promise.all([first, second]);
      expect(firstResult).toMatchObject({ stored: 1 });
      expect(secondResult).toMatchObject({ stored: 1 });
      expect(settled).toEqual(order);
    } finally {
      other.release();
    }
  });

  it('lets crypto-shredding that starts mid-batch wait for the batch, and keeps the values it stored (no deadlock)', async () => {
    // The batch writes its logins, then waits on its quarantine row (another session holds an
    // uncommitted row with that message id); shredding its new values starts meanwhile. Both lock
    // the pii_vault table before user_logins (sink/sql.ts): were the batch to lock pii_vault only
    // at its vault insert, the shred would hold it while waiting for the batch's logins.
    const ip = '198.51.100.73';
    const deviceId = '731-31-4159';
    const login = message(loginEvent({ ip, device_id: deviceId }));
    const bad = message('{"not": "a login"}');
    const tokens = [tokenizer.tokenize('ip', ip), tokenizer.tokenize('device_id', deviceId)];
    await sink.write([message(loginEvent())]); // a data key for the holder's row to name
    const holder = await testDb.owner.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO quarantine (message_id, reasons, body_ciphertext, data_key_id, body_bytes)
         VALUES ($1, '[]', '\\x00', (SELECT min(id) FROM data_keys), 1)`,
        [bad.messageId],
      );
      const written = sink.write([login, bad]);
      await waitForLockWaiter(1);
      const shredded = testDb.owner.pool.query<{ token: string }>('SELECT token FROM shred_unreferenced_vault_values($1::text[])', [tokens]);
      await waitForLockWaiter(2);
      await holder.query('ROLLBACK');
      expect(await written).toMatchObject({ stored: 1, quarantined: 1, vaultWritten: 2 });
      expect((await shredded).rows).toEqual([]);
      const { rows } = await testDb.owner.pool.query('SELECT token FROM pii_vault WHERE token = ANY($1)', [tokens]);
      expect(rows).toHaveLength(2);
    } finally {
      holder.release();
    }
  });

  it('keeps "0.60" and "0.6.0" distinct and parses their parts', async () => {
    const a = message(loginEvent({ app_version: '0.60' }));
    const b = message(loginEvent({ app_version: '0.6.0' }));
    await sink.write([a, b]);
    const { rows } = await testDb.owner.pool.query(
      'SELECT app_version, app_version_major, app_version_minor, app_version_patch FROM user_logins WHERE message_id = ANY($1) ORDER BY app_version',
      [[a.messageId, b.messageId]],
    );
    expect(rows).toEqual([
      { app_version: '0.6.0', app_version_major: 0, app_version_minor: 6, app_version_patch: 0 },
      { app_version: '0.60', app_version_major: 0, app_version_minor: 60, app_version_patch: null },
    ]);
  });

  it('dates a row by its UTC send time', async () => {
    const lateEvening = message(loginEvent(), new Date('2024-02-29T23:59:59.999Z'));
    const midnight = message(loginEvent(), new Date('2024-03-01T00:00:00.000Z'));
    await sink.write([lateEvening, midnight]);
    const { rows } = await testDb.owner.pool.query(
      `SELECT message_id, to_char(create_date, 'YYYY-MM-DD') AS day, sent_at FROM user_logins WHERE message_id = ANY($1)`,
      [[lateEvening.messageId, midnight.messageId]],
    );
    const byId = new Map(rows.map((r) => [r.message_id, r]));
    expect(byId.get(lateEvening.messageId)).toMatchObject({ day: '2024-02-29', sent_at: new Date('2024-02-29T23:59:59.999Z') });
    expect(byId.get(midnight.messageId)).toMatchObject({ day: '2024-03-01', sent_at: new Date('2024-03-01T00:00:00.000Z') });
  });

  it('quarantines an invalid message with its body encrypted, without failing the batch', async () => {
    const good = message(loginEvent());
    const bad = message('{"foo": "oops_wrong_msg_type", "bar": "123"}');
    const result = await sink.write([good, bad]);
    expect(result).toMatchObject({ stored: 1, quarantined: 1, reasons: { missing_field: 1 } });
    const q = await row<{ reasons: unknown; body_ciphertext: Buffer; data_key_id: number; body_bytes: number; receive_count: number }>(
      'SELECT * FROM quarantine WHERE message_id = $1',
      [bad.messageId],
    );
    expect(q.reasons).toEqual(expect.arrayContaining([{ code: 'unexpected_field', path: 'foo' }]));
    expect(q.body_bytes).toBe(Buffer.byteLength(bad.body));
    expect(q.receive_count).toBe(1);
    const body = await ring.decrypt(q.data_key_id, q.body_ciphertext, quarantineAad(bad.messageId));
    expect(body.toString('utf8')).toBe(bad.body);
    await expect(ring.decrypt(q.data_key_id, q.body_ciphertext, quarantineAad(good.messageId))).rejects.toBeInstanceOf(DecryptionError);
  });

  it('skips encryption and vault writes for tokens it already stored', async () => {
    const ip = '192.0.2.77';
    const deviceId = '777-77-7777';
    const first = await sink.write([message(loginEvent({ ip, device_id: deviceId }))]);
    const second = await sink.write([message(loginEvent({ ip, device_id: deviceId })), message(loginEvent({ ip, device_id: deviceId }))]);
    expect(first.vaultWritten).toBe(2);
    expect(second).toMatchObject({ stored: 2, vaultWritten: 0, vaultKnown: 4 });
  });

  it('quarantines only the message the database rejects, storing the rest of its batch', async () => {
    // A rule the validator does not know: the sink must isolate the offender, not drop the batch.
    await testDb.owner.pool.query(`ALTER TABLE user_logins ADD CONSTRAINT no_blocked_devices CHECK (device_type <> 'blocked')`);
    try {
      const good = [message(loginEvent()), message(loginEvent())];
      const offender = message(loginEvent({ device_type: 'blocked' }));
      const result = await sink.write([good[0]!, offender, good[1]!]);
      expect(result).toMatchObject({ stored: 2, quarantined: 1, splitAfterError: true, reasons: { storage_rejected: 1 } });
      const q = await row<{ reasons: unknown }>('SELECT reasons FROM quarantine WHERE message_id = $1', [offender.messageId]);
      expect(q.reasons).toEqual([{ code: 'storage_rejected', path: 'sqlstate:23514' }]);
      const { rows } = await testDb.owner.pool.query('SELECT message_id FROM user_logins WHERE message_id = ANY($1)', [
        [offender.messageId, ...good.map((m) => m.messageId)],
      ]);
      expect(rows.map((r) => r.message_id).sort()).toEqual(good.map((m) => m.messageId).sort());
    } finally {
      await testDb.owner.pool.query('ALTER TABLE user_logins DROP CONSTRAINT no_blocked_devices');
    }
  });

  it('seals with one data key reservation per batch', async () => {
    const before = ring.stats.generated;
    await sink.write(Array.from({ length: 50 }, () => message(loginEvent())));
    expect(ring.stats.generated - before).toBeLessThanOrEqual(1);
  });

  it('leaves no plaintext ip or device_id in any text column of user_logins or quarantine', async () => {
    const events = Array.from({ length: 20 }, () => loginEvent());
    await sink.write([...events.map((e) => message(e)), message(JSON.stringify({ ...loginEvent(), ip: 'not-an-ip-1.2.3.4' }))]);
    const dump = (await testDb.owner.pool.query(`SELECT t::text AS line FROM user_logins t UNION ALL SELECT q::text FROM quarantine q`)).rows
      .map((r) => r.line as string)
      .join('\n');
    for (const event of events) {
      expect(dump).not.toContain(event.ip);
      expect(dump).not.toContain(event.device_id);
    }
    expect(dump).not.toContain('1.2.3.4');
  });

  it('uses AES-GCM framing that a wrong key cannot open', async () => {
    const m = message(loginEvent());
    await sink.write([m]);
    const login = await row<{ masked_ip: string }>('SELECT masked_ip FROM user_logins WHERE message_id = $1', [m.messageId]);
    const vault = await row<{ ciphertext: Buffer }>('SELECT ciphertext FROM pii_vault WHERE token = $1', [login.masked_ip]);
    expect(() => open(randomBytes(32), vault.ciphertext, vaultAad(login.masked_ip))).toThrow(DecryptionError);
  });
});
