import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { startDelayProxy, type DelayProxy } from '../../../local/delay-proxy.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { createIngestor, type Ingestor, type IngestorOptions } from '../../../services/ingestor/worker.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { capturedLogger, loginEvent, startCuttableProxy, startSqsHarness, uniqueName, waitFor, type SqsHarness } from '../../support/ingestor-harness.js';

/**
 * The ingestor's transport against the real SQS-protocol server and PostgreSQL: receives in
 * flight follow the backlog and the database, deletes that fail are reported, and nothing is
 * lost or stored twice on the way. Every wait is for a condition, never for a time.
 */
let testDb: TestDatabase;
let sqs: SqsHarness;
let delayed: DelayProxy;
let delayedSqs: SQSClient;
const keys = LocalKeyring.fromKey(randomBytes(32));

beforeAll(async () => {
  [testDb, sqs] = await Promise.all([createTestDatabase(), startSqsHarness()]);
  // 20 ms more per call, as a network between the ingestor and SQS: concurrency must make up for it.
  delayed = await startDelayProxy(sqs.server.endpoint, 20);
  delayedSqs = new SQSClient({ region: 'us-east-1', endpoint: delayed.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}, 60_000);
afterAll(async () => {
  delayedSqs?.destroy();
  await delayed?.close();
  await sqs?.close();
  await testDb?.drop();
});

function ingestorOn(queueUrl: string, client: SQSClient, database: Database, logger = capturedLogger().logger, options: IngestorOptions = {}): Ingestor {
  return createIngestor({
    sqs: client,
    queueUrl,
    database,
    keys,
    logger,
    options: { pollers: 1, minPollers: 1, maxPollers: 16, waitTimeSeconds: 1, backoff: { baseMs: 50, maxMs: 400 }, ...options },
  });
}

async function metricLines(ingestor: Ingestor, name: string): Promise<string[]> {
  return (await ingestor.registry.metrics()).split('\n').filter((line) => line.startsWith(name));
}

/** Rows stored for these message ids, and how many distinct ones. */
async function stored(ids: string[]): Promise<{ rows: number; distinct: number }> {
  const { rows } = await testDb.owner.pool.query<{ rows: number; distinct: number }>(
    'SELECT count(*)::int AS rows, count(DISTINCT message_id)::int AS distinct FROM user_logins WHERE message_id = ANY($1)',
    [ids],
  );
  return rows[0] ?? { rows: 0, distinct: 0 };
}

describe('ingestor transport: adaptive receives and pooled deletes', () => {
  it('grows its receives in flight while a backlog waits, halves them to the minimum while the database refuses batches, and stores everything once', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('adaptive'), { visibilityTimeoutSeconds: 2 });
    const ids = await sqs.send(queueUrl, Array.from({ length: 3000 }, () => JSON.stringify(loginEvent())));
    const proxy = await startCuttableProxy(Number(new URL(testDb.url).port));
    const proxied = new URL(testDb.url);
    proxied.port = String(proxy.port);
    const database = createDatabase({ url: proxied.toString(), role: 'ingestor', poolSize: 4 });
    const ingestor = ingestorOn(queueUrl, delayedSqs, database);
    try {
      await ingestor.start();
      expect(ingestor.stats().transport.limit).toBe(1);
      // Grows with the backlog: one more receive per window of full receives.
      await waitFor(() => ingestor.stats().transport.limit >= 4, 'four receives in flight', 120_000);
      expect((await metricLines(ingestor, 'tokenvault_ingestor_receive_concurrency_changes_total{reason="backlog"}'))[0]).toMatch(/ ([3-9]|\d\d+)$/);
      expect(ingestor.stats().stored).toBeLessThan(3000);

      // The database goes away: failed batches halve the limit, window by window, to the minimum.
      await proxy.cut();
      await waitFor(() => ingestor.stats().transport.limit === 1, 'back to one receive in flight', 120_000);
      expect((await metricLines(ingestor, 'tokenvault_ingestor_receive_concurrency_changes_total{reason="handler_error"}'))[0]).toMatch(/ [1-9]\d*$/);
      expect(await metricLines(ingestor, 'tokenvault_ingestor_receive_concurrency ')).toEqual(['tokenvault_ingestor_receive_concurrency 1']);

      // It comes back: everything stored exactly once, the queue empty.
      await proxy.restore();
      await waitFor(async () => (await sqs.remaining(queueUrl)) === 0 && ingestor.stats().transport.inFlightMessages === 0, 'queue drained', 240_000);
      expect(await stored(ids)).toEqual({ rows: 3000, distinct: 3000 });
      // Its own counts agree: a batch whose COMMIT reached PostgreSQL just as the connection was cut
      // is not counted as stored here (the answer was lost); its messages come back and are counted
      // as duplicates instead. The rows above are what must hold: each message once.
      const { stored: storedHere, duplicates } = ingestor.stats();
      expect(storedHere).toBeLessThanOrEqual(3000);
      expect(storedHere + duplicates).toBeGreaterThanOrEqual(3000);
    } finally {
      await ingestor.stop();
      await proxy.close();
      await database.close();
    }
  }, 600_000);

  it('reports a DeleteMessageBatch that fails (a metric and a log line per call); the messages come back and are absorbed, none stored twice', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('delete-fails'), { visibilityTimeoutSeconds: 1 });
    const ids = await sqs.send(queueUrl, Array.from({ length: 20 }, () => JSON.stringify(loginEvent())));
    // The real client; the first DeleteMessageBatch call fails at the transport, one entry of the next is refused by SQS.
    const flaky = new SQSClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
    let deleteCalls = 0;
    flaky.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteMessageBatchCommand') {
          deleteCalls += 1;
          if (deleteCalls === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
          if (deleteCalls === 2) {
            const entries = (args.input as { Entries: { ReceiptHandle: string }[] }).Entries;
            const first = entries[0];
            if (first !== undefined) first.ReceiptHandle = 'not-a-receipt-handle';
          }
        }
        return next(args);
      },
      { step: 'initialize', name: 'failDeletes' },
    );
    const logs = capturedLogger();
    const database = testDb.as('ingestor');
    const ingestor = ingestorOn(queueUrl, flaky, database, logs.logger, { pollers: 2 });
    try {
      await ingestor.start();
      await waitFor(async () => (await sqs.remaining(queueUrl)) === 0 && ingestor.stats().transport.inFlightMessages === 0, 'queue drained', 60_000);
      const stats = ingestor.stats();
      // Never silent: counted, and one warning per failed call with what failed.
      expect(stats.deleteFailures).toBeGreaterThanOrEqual(2);
      const failures = await metricLines(ingestor, 'tokenvault_ingestor_delete_failures_total ');
      expect(Number(failures[0]?.split(' ')[1])).toBe(stats.deleteFailures);
      const warnings = logs.lines.filter((line) => line.includes('"level":40'));
      expect(warnings.some((line) => line.includes('deleting committed messages failed') && line.includes('ECONNRESET'))).toBe(true);
      expect(warnings.some((line) => line.includes('SQS did not delete some committed messages') && line.includes('"failed":1'))).toBe(true);
      // What was not deleted came back and was recognised: every message stored once.
      expect(stats.stored).toBe(20);
      expect(stats.duplicates).toBeGreaterThanOrEqual(2);
      expect(await stored(ids)).toEqual({ rows: 20, distinct: 20 });
      expect((await metricLines(ingestor, 'tokenvault_ingestor_sqs_delete_seconds_count'))[0]).toMatch(/ [1-9]\d*$/);
    } finally {
      await ingestor.stop();
      flaky.destroy();
    }
  }, 120_000);
});
