import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ReceiveMessageCommand, SQSClient, type QueueAttributeName } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { withTransaction } from '../../../db/transaction.js';
import { vaultAad } from '../../../lib/crypto/vault-context.js';
import { AwsKmsKeyProvider } from '../../../lib/keys/aws-kms.js';
import { DataKeyRing } from '../../../lib/keys/data-key-ring.js';
import type { KeyProvider } from '../../../lib/keys/key-provider.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../../lib/keys/token-keys.js';
import { KnownTokens } from '../../../services/ingestor/known-tokens.js';
import { createSink } from '../../../services/ingestor/sink.js';
import { createIngestor, type Ingestor, type IngestorOptions } from '../../../services/ingestor/worker.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { startFakeKms } from '../../support/kms-server.js';
import { capturedLogger, loginEvent, startCuttableProxy, startSqsHarness, uniqueName, waitFor, type SqsHarness } from '../../support/ingestor-harness.js';

const REFERENCE = readFileSync(new URL('../../../data/login-queue.sample.jsonl', import.meta.url), 'utf8').split('\n').filter(Boolean);

let testDb: TestDatabase;
let ingestorDb: Database;
let sqs: SqsHarness;
let keys: LocalKeyring;
const logs = capturedLogger();
const running: Ingestor[] = [];
/** Every ip / device_id this file sends: none may appear in plaintext outside the vault. */
const sentPii = new Set<string>();

beforeAll(async () => {
  [testDb, sqs] = await Promise.all([createTestDatabase(), startSqsHarness()]);
  ingestorDb = testDb.as('ingestor');
  keys = LocalKeyring.fromKey(randomBytes(32));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((ingestor) => ingestor.stop()));
});
afterAll(async () => {
  await sqs?.close();
  await testDb?.drop();
});

function startIngestor(queueUrl: string, options: IngestorOptions = {}, deps: { database?: Database; keys?: KeyProvider } = {}): Ingestor {
  const ingestor = createIngestor({
    sqs: sqs.sqs,
    queueUrl,
    database: deps.database ?? ingestorDb,
    keys: deps.keys ?? keys,
    logger: logs.logger,
    options: { pollers: 2, waitTimeSeconds: 1, backoff: { baseMs: 50, maxMs: 400 }, ...options },
  });
  running.push(ingestor);
  return ingestor;
}

function send(queueUrl: string, bodies: string[]): Promise<string[]> {
  for (const body of bodies) {
    try {
      const parsed = JSON.parse(body) as { ip?: unknown; device_id?: unknown };
      if (typeof parsed.ip === 'string') sentPii.add(parsed.ip);
      if (typeof parsed.device_id === 'string') sentPii.add(parsed.device_id);
    } catch {
      // not JSON: carries no PII we track
    }
  }
  return sqs.send(queueUrl, bodies);
}

async function count(table: 'user_logins' | 'quarantine', ids: string[]): Promise<number> {
  const { rows } = await testDb.owner.pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE message_id = ANY($1)`, [ids]);
  return rows[0].n as number;
}

async function metric(ingestor: Ingestor, name: string): Promise<string> {
  const text = await ingestor.registry.metrics();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .join('\n');
}

describe('ingestor: SQS → PostgreSQL', () => {
  it('stores the 99 reference events and quarantines line 13, then empties the queue', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('reference'));
    const before = Date.now();
    const ids = await send(queueUrl, REFERENCE);
    const after = Date.now();
    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(async () => ingestor.stats().stored + ingestor.stats().quarantined >= 100 && (await sqs.remaining(queueUrl)) === 0, 'all 100 handled');

    expect(await count('user_logins', ids)).toBe(99);
    expect(await count('quarantine', ids)).toBe(1);
    const { rows: quarantined } = await testDb.owner.pool.query('SELECT message_id, reasons FROM quarantine WHERE message_id = ANY($1)', [ids]);
    expect(quarantined[0].message_id).toBe(ids[12]);
    expect(quarantined[0].reasons).toEqual(expect.arrayContaining([{ code: 'unexpected_field', path: 'foo' }]));
    // Quarantined for what it lacks; its unknown fields follow as hints.
    expect(quarantined[0].reasons[0]).toEqual({ code: 'missing_field', path: 'user_id' });
    expect(await metric(ingestor, 'tokenvault_ingestor_messages_quarantined_total')).toContain('reason="missing_field"} 1');
    expect(await metric(ingestor, 'tokenvault_ingestor_messages_stored_total')).toContain(' 99');

    // create_date is the UTC date of SentTimestamp; "0.60" survives as text.
    const { rows } = await testDb.owner.pool.query(
      `SELECT message_id, masked_ip, masked_device_id, app_version, sent_at,
              create_date = (sent_at AT TIME ZONE 'UTC')::date AS utc_date
       FROM user_logins WHERE message_id = ANY($1)`,
      [ids],
    );
    for (const row of rows) {
      expect(row.utc_date).toBe(true);
      expect((row.sent_at as Date).getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect((row.sent_at as Date).getTime()).toBeLessThanOrEqual(after + 1000);
    }
    expect(rows.map((row) => row.app_version)).toContain('0.60');

    // Vault round trip: each token decrypts to the original value of its message.
    const ring = new DataKeyRing(testDb.owner.db, keys, { maxUses: 10, maxAgeMs: 60_000 });
    const byId = new Map(rows.map((row) => [row.message_id as string, row]));
    for (const [index, id] of ids.entries()) {
      const row = byId.get(id);
      if (row === undefined) continue;
      const original = JSON.parse(REFERENCE[index] ?? '{}') as { ip: string; device_id: string };
      const pairs: [string, string][] = [
        [row.masked_ip as string, original.ip],
        [row.masked_device_id as string, original.device_id],
      ];
      for (const [token, value] of pairs) {
        const { rows: vault } = await testDb.owner.pool.query('SELECT ciphertext, data_key_id FROM pii_vault WHERE token = $1', [token]);
        const plaintext = await ring.decrypt(vault[0].data_key_id, vault[0].ciphertext, vaultAad(token));
        expect(plaintext.toString('utf8')).toBe(value);
      }
    }
  });

  it('quarantines hostile messages with their reason codes and keeps running', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('hostile'));
    const valid = loginEvent();
    const cases: [string, string][] = [
      ['{"user_id": ', 'invalid_json'],
      ['[1, 2, 3]', 'not_an_object'],
      ['12345', 'not_an_object'],
      ['null', 'not_an_object'],
      [JSON.stringify({ ...loginEvent(), user_id: 'abc\u0000def' }), 'control_character'],
      [JSON.stringify({ ...loginEvent(), device_type: 'x'.repeat(33) }), 'too_long'],
      [JSON.stringify({ ...loginEvent(), pad: 'x'.repeat(300 * 1024) }), 'body_too_large'],
      [`${'['.repeat(5000)}${']'.repeat(5000)}`, 'nesting_too_deep'],
      [`{"__proto__": {"admin": true}, ${JSON.stringify(loginEvent()).slice(1)}`, 'forbidden_key'],
      [JSON.stringify({ ...loginEvent(), ip: 'fe80::1%eth0' }), 'invalid_ip'],
      [JSON.stringify({ ...loginEvent(), ip: '300.1.1.1' }), 'invalid_ip'],
      [JSON.stringify({ ...loginEvent(), app_version: 3 }), 'invalid_type'],
      [JSON.stringify({ ...loginEvent(), constructor: { prototype: { admin: true } } }), 'forbidden_key'],
      [JSON.stringify({ ...loginEvent(), prototype: 'x' }), 'forbidden_key'],
    ];
    const ids = await send(queueUrl, [...cases.map(([body]) => body), JSON.stringify(valid)]);
    const validId = ids[cases.length] ?? '';
    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(async () => (await sqs.remaining(queueUrl)) === 0 && ingestor.stats().inFlight === 0, 'hostile queue drained');

    const { rows } = await testDb.owner.pool.query('SELECT message_id, reasons FROM quarantine WHERE message_id = ANY($1)', [ids]);
    const reasonsById = new Map(rows.map((row) => [row.message_id as string, (row.reasons as { code: string }[]).map((r) => r.code)]));
    cases.forEach(([, code], index) => expect(reasonsById.get(ids[index] ?? ''), code).toContain(code));
    expect(await count('user_logins', [validId])).toBe(1);
    expect(ingestor.ready()).toBe(true);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('stores events with extra fields without them, counting and logging the names but never the values', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('additive'));
    const secret = 'value-never-logged-4711';
    const ids = await send(queueUrl, [
      JSON.stringify({ ...loginEvent(), campaign: secret, os_version: secret }),
      JSON.stringify({ ...loginEvent(), campaign: secret }),
      JSON.stringify({ ...loginEvent(), '10.9.8.7': secret }),
      JSON.stringify({ ...loginEvent(), nested: { __proto__: { admin: true } } }),
    ]);
    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(async () => ingestor.stats().stored >= 4 && (await sqs.remaining(queueUrl)) === 0, 'additive events stored');

    expect(await count('user_logins', ids)).toBe(4);
    expect(await count('quarantine', ids)).toBe(0);
    const counted = await metric(ingestor, 'tokenvault_ingestor_unknown_fields_total');
    expect(counted).toContain('field="campaign"} 2');
    expect(counted).toContain('field="os_version"} 1');
    expect(counted).toContain('field="_unnamed"} 1');
    expect(counted).toContain('field="nested"} 1');
    const logged = logs.lines.join('\n');
    expect(logged).toMatch(/"field":"campaign".*does not know/);
    expect(logged).not.toContain(secret);
    expect(logged).not.toContain('10.9.8.7');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });

  it('quarantines events with extra fields when INGEST_UNKNOWN_FIELDS=quarantine', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('strict'));
    const [extra = '', plain = ''] = await send(queueUrl, [JSON.stringify({ ...loginEvent(), campaign: 'spring' }), JSON.stringify(loginEvent())]);
    const ingestor = startIngestor(queueUrl, { unknownFields: 'quarantine' });
    await ingestor.start();
    await waitFor(async () => ingestor.stats().stored + ingestor.stats().quarantined >= 2 && (await sqs.remaining(queueUrl)) === 0, 'strict batch handled');
    const { rows } = await testDb.owner.pool.query('SELECT reasons FROM quarantine WHERE message_id = $1', [extra]);
    expect(rows[0]?.reasons).toEqual([{ code: 'unexpected_field', path: 'campaign' }]);
    expect(await count('user_logins', [plain])).toBe(1);
    expect(await metric(ingestor, 'tokenvault_ingestor_messages_quarantined_total')).toContain('reason="unexpected_field"} 1');
  });

  it('stores a message once when it comes back after a commit whose delete never happened', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('crash'), { visibilityTimeoutSeconds: 1 });
    const [id] = await send(queueUrl, [JSON.stringify(loginEvent())]);
    // A "crashed" ingestor: receives and commits through the sink, then dies before DeleteMessageBatch.
    const received = await sqs.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        AttributeNames: ['SentTimestamp' as QueueAttributeName],
      }),
    );
    const message = received.Messages?.[0];
    expect(message?.MessageId).toBe(id);
    const crashed = createSink({
      database: ingestorDb,
      dataKeys: new DataKeyRing(ingestorDb.db, keys, { maxUses: 100, maxAgeMs: 60_000 }),
      tokenizer: await loadActiveTokenizer(ingestorDb.db, keys).then((t) => () => t),
      knownTokens: new KnownTokens(10),
    });
    await crashed.write([{ messageId: id ?? '', body: message?.Body ?? '', sentAt: new Date(Number(message?.Attributes?.SentTimestamp)), receiveCount: 1 }]);
    expect(await count('user_logins', [id ?? ''])).toBe(1);

    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(async () => ingestor.stats().duplicates >= 1 && (await sqs.remaining(queueUrl)) === 0, 'redelivered message absorbed');
    expect(ingestor.stats().stored).toBe(0);
    expect(await count('user_logins', [id ?? ''])).toBe(1);
  });

  it('leaves messages on the queue while the database is unreachable and stores them once when it is back', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('outage'), { visibilityTimeoutSeconds: 1 });
    const proxy = await startCuttableProxy(Number(new URL(testDb.url).port));
    const proxied = new URL(testDb.url);
    proxied.port = String(proxy.port);
    const database = createDatabase({ url: proxied.toString(), role: 'ingestor', poolSize: 4 });
    try {
      const ingestor = startIngestor(queueUrl, {}, { database });
      await ingestor.start();
      await proxy.cut();
      const ids = await send(queueUrl, [JSON.stringify(loginEvent()), JSON.stringify(loginEvent()), JSON.stringify(loginEvent())]);
      await waitFor(() => ingestor.stats().retried >= 2, 'two failed attempts');
      expect(ingestor.ready()).toBe(false);
      expect(await count('user_logins', ids)).toBe(0);
      expect(await sqs.remaining(queueUrl)).toBe(3);
      expect(await metric(ingestor, 'tokenvault_ingestor_batches_retried_total')).toMatch(/cause="transient"} [1-9]/);

      await proxy.restore();
      await waitFor(async () => ingestor.stats().stored === 3 && (await sqs.remaining(queueUrl)) === 0, 'stored after recovery');
      expect(await count('user_logins', ids)).toBe(3);
      expect(ingestor.ready()).toBe(true);
      await ingestor.stop();
    } finally {
      await proxy.close();
      await database.close();
    }
  });

  it('answers readiness in the shape the reveal API uses: database, queue, token key and polling, each with what failed', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('readiness'));
    const proxy = await startCuttableProxy(Number(new URL(testDb.url).port));
    const proxied = new URL(testDb.url);
    proxied.port = String(proxy.port);
    const database = createDatabase({ url: proxied.toString(), role: 'ingestor', poolSize: 2 });
    try {
      const ingestor = startIngestor(queueUrl, {}, { database });
      expect(await ingestor.checkReady()).toEqual({
        status: 'not_ready',
        checks: { database: { ok: true }, queue: { ok: true }, tokenKey: { ok: false, error: 'not loaded yet' }, polling: { ok: false, error: 'not started' } },
      });
      await ingestor.start();
      // The active version of this file's database: the rotation test may have run first (any order must pass).
      const { rows: active } = await testDb.owner.pool.query(`SELECT version FROM token_keys WHERE state = 'active'`);
      expect(active).toHaveLength(1);
      const version = `v${active[0].version as number}`;
      expect(await ingestor.checkReady()).toEqual({ status: 'ready', checks: { database: { ok: true }, queue: { ok: true }, tokenKey: { ok: true, detail: version }, polling: { ok: true } } });
      await proxy.cut();
      const cut = await ingestor.checkReady();
      expect(cut).toMatchObject({ status: 'not_ready', checks: { database: { ok: false, error: expect.stringMatching(/\(E[A-Z]+\)$|^Error|unavailable/) }, polling: { ok: true } } });
      expect(JSON.stringify(cut)).not.toContain(String(proxy.port));
      await proxy.restore();
      await waitFor(async () => (await ingestor.checkReady()).status === 'ready', 'ready again');
      await ingestor.stop();
      expect((await ingestor.checkReady()).checks.polling).toEqual({ ok: false, error: 'stopping' });
    } finally {
      await proxy.close();
      await database.close();
    }
  });

  it('refuses transport options SQS would reject when it is created, naming the option', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('options'));
    const create = (options: IngestorOptions) => () =>
      createIngestor({ sqs: sqs.sqs, queueUrl, database: ingestorDb, keys, logger: logs.logger, options: { waitTimeSeconds: 1, ...options } });
    expect(create({ pollers: 0 })).toThrow(/option pollers: must be an integer from 1 to 256/);
    expect(create({ batchSize: 11 })).toThrow(/option batchSize: must be an integer from 1 to 10/);
    expect(create({ visibilityTimeoutSeconds: 43_201 })).toThrow(/option visibilityTimeoutSeconds/);
    expect(() => createIngestor({ sqs: sqs.sqs, queueUrl: 'login-queue', database: ingestorDb, keys, logger: logs.logger })).toThrow(/option queueUrl/);
  });

  it('exports the process and Node.js runtime metrics next to its own', async () => {
    const ingestor = startIngestor(await sqs.createQueue(uniqueName('default-metrics')));
    const text = await ingestor.registry.metrics();
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('tokenvault_ingestor_messages_stored_total');
  });

  it('finishes the in-flight batch (commit and delete) before stop() resolves', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('graceful'), { visibilityTimeoutSeconds: 30 });
    const [id = ''] = await send(queueUrl, [JSON.stringify(loginEvent())]);
    // Hold the row's key in an open transaction so the ingestor's insert waits mid-batch.
    const blocker = await testDb.owner.pool.connect();
    await blocker.query('BEGIN');
    await blocker.query(
      `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, app_version, create_date, sent_at, token_key_version)
       VALUES ($1, 'u', 'ios', 'x', 'y', '1', now(), now(), 1)`,
      [id],
    );
    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(() => ingestor.stats().inFlight === 1, 'a batch in flight');
    let stopped = false;
    const stopping = ingestor.stop().then(() => {
      stopped = true;
    });
    // stop() has been asked; the batch's INSERT is still waiting for the blocker's row lock.
    await waitFor(
      async () =>
        (await testDb.owner.pool.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY user_logins%'")).rowCount === 1,
      "the batch's insert waiting on the lock",
    );
    expect(stopped).toBe(false);
    await blocker.query('ROLLBACK');
    blocker.release();
    await stopping;
    expect(ingestor.stats()).toMatchObject({ inFlight: 0, stored: 1, polling: false });
    expect(await count('user_logins', [id])).toBe(1);
    expect(await sqs.remaining(queueUrl)).toBe(0);
  });

  it('receives and commits the next batch while the previous delete is in flight, and stop() waits for that delete', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('delete-in-flight'), { visibilityTimeoutSeconds: 30 });
    // The real SDK client, with one middleware that holds DeleteMessageBatch calls until released.
    const gated = new SQSClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let deletesHeld = 0;
    gated.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteMessageBatchCommand') {
          deletesHeld += 1;
          await gate;
        }
        return next(args);
      },
      { step: 'initialize', name: 'holdDeletes' },
    );
    try {
      const ingestor = createIngestor({
        sqs: gated,
        queueUrl,
        database: ingestorDb,
        keys,
        logger: logs.logger,
        options: { pollers: 1, waitTimeSeconds: 1, backoff: { baseMs: 50, maxMs: 400 } },
      });
      running.push(ingestor);
      await ingestor.start();
      const [first = ''] = await send(queueUrl, [JSON.stringify(loginEvent())]);
      await waitFor(() => deletesHeld === 1, "the first batch's delete in flight");
      // Deleted only after the commit.
      expect(await count('user_logins', [first])).toBe(1);

      const [second = ''] = await send(queueUrl, [JSON.stringify(loginEvent())]);
      // Committed while the first delete is still held: the poller did not wait for it to receive.
      await waitFor(async () => (await count('user_logins', [second])) === 1, 'the second batch committed');
      await waitFor(() => deletesHeld === 2, "the second batch's delete in flight");

      let stopped = false;
      const stopping = ingestor.stop().then(() => {
        stopped = true;
      });
      // stop() has been asked; both deletes are still held, so both messages are still on the queue.
      await waitFor(async () => deletesHeld === 2 && (await sqs.remaining(queueUrl)) === 2, 'both deletes held after stop()');
      expect(stopped).toBe(false);
      expect(await sqs.remaining(queueUrl)).toBe(2);
      release();
      await stopping;
      expect(ingestor.stats()).toMatchObject({ stored: 2, deleted: 2, deleteFailures: 0, inFlight: 0, polling: false });
      expect(await sqs.remaining(queueUrl)).toBe(0);
    } finally {
      release();
      gated.destroy();
    }
  });

  it('switches to a newly activated token key without a restart', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('rotation'));
    const ingestor = startIngestor(queueUrl, { tokenKeyRefreshMs: 100 });
    await ingestor.start();
    const before = ingestor.stats().tokenKeyVersion ?? 1;
    const generated = await keys.generateDataKey('token-key');
    // One transaction on one connection (pool.query('BEGIN') could run each statement on another).
    await withTransaction(testDb.owner.pool, async (client) => {
      await client.query(`UPDATE token_keys SET state = 'retired' WHERE state = 'active'`);
      await client.query(`INSERT INTO token_keys (version, wrapped_key, kek_id, state) VALUES ($1, $2, $3, 'active')`, [
        before + 1,
        generated.wrapped,
        generated.kekId,
      ]);
    });
    await waitFor(() => ingestor.stats().tokenKeyVersion === before + 1, 'token key switch');
    const [id = ''] = await send(queueUrl, [JSON.stringify(loginEvent())]);
    await waitFor(() => ingestor.stats().stored === 1, 'row stored');
    const { rows } = await testDb.owner.pool.query('SELECT masked_ip, token_key_version FROM user_logins WHERE message_id = $1', [id]);
    expect(rows[0]).toMatchObject({ token_key_version: before + 1 });
    expect(rows[0].masked_ip).toMatch(new RegExp(`^ip_v${before + 1}_`));
  });

  it('keeps plaintext ip and device_id out of user_logins, quarantine and the logs', async () => {
    // Its own traffic (the reference data and generated events), so it holds when run alone or first.
    const queueUrl = await sqs.createQueue(uniqueName('leak'));
    const ids = await send(queueUrl, [...REFERENCE, ...Array.from({ length: 20 }, () => JSON.stringify(loginEvent()))]);
    const ingestor = startIngestor(queueUrl);
    await ingestor.start();
    await waitFor(async () => (await sqs.remaining(queueUrl)) === 0 && ingestor.stats().inFlight === 0, 'leak-check traffic drained');
    expect((await count('user_logins', ids)) + (await count('quarantine', ids))).toBe(ids.length);
    expect(sentPii.size).toBeGreaterThan(100);
    const { rows } = await testDb.owner.pool.query(`SELECT t::text AS line FROM user_logins t UNION ALL SELECT q::text FROM quarantine q`);
    const tables = rows.map((row) => row.line as string).join('\n');
    const logText = logs.lines.join('');
    expect(logText).toContain('batch stored');
    for (const value of sentPii) {
      expect(tables.includes(value), `table contains ${value}`).toBe(false);
      expect(logText.includes(value), `logs contain ${value}`).toBe(false);
    }
  });
});

describe('ingestor with AWS KMS over HTTP', () => {
  it('calls GenerateDataKey per data key, not per message', async () => {
    const kms = await startFakeKms();
    const kmsDb = await createTestDatabase();
    const provider = new AwsKmsKeyProvider({ keyId: kms.createKey('alias/tokenvault'), region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials });
    try {
      const queueUrl = await sqs.createQueue(uniqueName('kms'));
      const ids = await sqs.send(
        queueUrl,
        Array.from({ length: 30 }, () => JSON.stringify(loginEvent())),
      );
      const ingestor = startIngestor(queueUrl, {}, { database: kmsDb.as('ingestor'), keys: provider });
      await ingestor.start();
      await waitFor(() => ingestor.stats().stored === 30, 'all stored');
      const { rows } = await kmsDb.owner.pool.query('SELECT count(*)::int AS n FROM user_logins WHERE message_id = ANY($1)', [ids]);
      expect(rows[0].n).toBe(30);
      // One for the token key, one for the vault data key: KMS cost does not grow with messages.
      expect(kms.calls.GenerateDataKey).toBe(2);
      expect(await metric(ingestor, 'tokenvault_ingestor_key_provider_calls_total')).toContain('operation="generateDataKey"} 2');
      await ingestor.stop();
    } finally {
      provider.close();
      await kmsDb.drop();
      await kms.close();
    }
  });
});
