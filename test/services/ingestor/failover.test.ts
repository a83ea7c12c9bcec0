import { randomBytes } from 'node:crypto';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../../../db/client.js';
import { startEmbeddedSqs } from '../../../local/embedded-sqs.js';
import { LocalKeyring } from '../../../lib/keys/local-keyring.js';
import { startHealthServer, type HealthServer } from '../../../services/ingestor/http.js';
import type { Readiness } from '../../../lib/health/readiness.js';
import { createIngestor, type Ingestor } from '../../../services/ingestor/worker.js';
import { startOwnPostgres, type OwnPostgres } from '../../support/own-postgres.js';
import { capturedLogger, loginEvent, startSqsHarness, uniqueName, waitFor, type SqsHarness } from '../../support/ingestor-harness.js';

/**
 * A database failover with work in flight: the ingestor's own PostgreSQL cluster is shut down
 * fast (every session terminated with 57P01) while messages drain, stays down, and comes back
 * on the same address. The process must neither crash nor lose or duplicate a message.
 */
const MESSAGES = 1500;
const OUTAGE_MS = 6_000;

let postgres: OwnPostgres;
let sqs: SqsHarness;
let database: Database;
const keys = LocalKeyring.fromKey(randomBytes(32));
const logs = capturedLogger();

beforeAll(async () => {
  [postgres, sqs] = await Promise.all([startOwnPostgres(), startSqsHarness()]);
  database = createDatabase({ url: postgres.url, role: 'ingestor', poolSize: 4 }, { applicationName: 'failover-ingestor', logger: logs.logger });
}, 120_000);
afterAll(async () => {
  await database?.close();
  await sqs?.close();
  await postgres?.close();
});

function ingestorFor(queueUrl: string, sqsClient = sqs.sqs): Ingestor {
  return createIngestor({
    sqs: sqsClient,
    queueUrl,
    database,
    keys,
    logger: logs.logger,
    options: { pollers: 4, waitTimeSeconds: 1, tokenKeyRefreshMs: 300, backoff: { baseMs: 100, maxMs: 1_000 } },
  });
}

async function readyz(health: HealthServer): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`http://127.0.0.1:${health.port}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

describe('ingestor failover', () => {
  it('rides out a fast shutdown of PostgreSQL with batches in flight: unready meanwhile, every message stored exactly once after', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('failover'), { visibilityTimeoutSeconds: 3 });
    const bodies = Array.from({ length: MESSAGES }, () => JSON.stringify(loginEvent()));
    const ids = await sqs.send(queueUrl, bodies);
    const ingestor = ingestorFor(queueUrl);
    await ingestor.start();
    const health = await startHealthServer({ host: '127.0.0.1', port: 0, registry: ingestor.registry, checkReady: () => ingestor.checkReady() });
    try {
      expect((await readyz(health)).status).toBe(200);
      await waitFor(() => ingestor.stats().stored >= 200, 'draining under way', 60_000);
      expect(ingestor.stats().stored).toBeLessThan(MESSAGES);

      await postgres.stop();
      const down = await readyz(health);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'not_ready', checks: { database: { ok: false }, queue: { ok: true } } });
      await waitFor(() => ingestor.stats().retried > 0 && !ingestor.ready(), 'a batch failing while the database is down', 30_000);
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      expect((await readyz(health)).status).toBe(503);

      await postgres.start();
      await waitFor(async () => (await readyz(health)).status === 200, '/readyz 200 after the database is back', 60_000);
      await waitFor(async () => (await sqs.remaining(queueUrl)) === 0 && ingestor.stats().inFlight === 0, 'queue drained after recovery', 120_000);

      const { rows } = await postgres.owner.pool.query<{ rows: number; distinct_ids: number; vault: number; tokens: number }>(
        `SELECT (SELECT count(*)::int FROM user_logins WHERE message_id = ANY($1)) AS rows,
                (SELECT count(DISTINCT message_id)::int FROM user_logins WHERE message_id = ANY($1)) AS distinct_ids,
                (SELECT count(*)::int FROM pii_vault) AS vault,
                (SELECT count(DISTINCT t)::int FROM user_logins, LATERAL (VALUES (masked_ip), (masked_device_id)) AS v(t)) AS tokens`,
        [ids],
      );
      // Every message stored, none twice, none quarantined, none dead-lettered; every token has its vault row.
      expect(rows[0]).toEqual({ rows: MESSAGES, distinct_ids: MESSAGES, vault: rows[0]?.tokens, tokens: rows[0]?.tokens });
      const { rows: quarantined } = await postgres.owner.pool.query('SELECT count(*)::int AS n FROM quarantine');
      expect(quarantined[0]?.n).toBe(0);
      const dlq = await sqs.sqs.send(new GetQueueAttributesCommand({ QueueUrl: `${queueUrl}-dlq`, AttributeNames: ['ApproximateNumberOfMessages'] }));
      expect(dlq.Attributes?.ApproximateNumberOfMessages).toBe('0');
      expect(ingestor.ready()).toBe(true);
      expect(logs.lines.join('')).toMatch(/database connection lost|batch not stored/);
    } finally {
      await ingestor.stop();
      await health.close();
    }
  }, 300_000);

  it('answers /readyz 503 naming the queue while the SQS endpoint is down, and 200 once it answers again', async () => {
    const server = await startEmbeddedSqs({ port: 0 });
    const port = Number(new URL(server.endpoint).port);
    const { SQSClient, CreateQueueCommand } = await import('@aws-sdk/client-sqs');
    const client = new SQSClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const name = uniqueName('unreachable');
    const created = await client.send(new CreateQueueCommand({ QueueName: name }));
    const ingestor = ingestorFor(created.QueueUrl ?? '', client);
    await ingestor.start();
    const health = await startHealthServer({ host: '127.0.0.1', port: 0, registry: ingestor.registry, checkReady: () => ingestor.checkReady() });
    let restarted: Awaited<ReturnType<typeof startEmbeddedSqs>> | undefined;
    try {
      expect((await readyz(health)).status).toBe(200);
      await server.close();
      const down = await readyz(health);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ status: 'not_ready', checks: { database: { ok: true }, queue: { ok: false } } });
      expect(down.body.checks.queue?.error).toMatch(/\w/);

      // The endpoint comes back (same address, the queue recreated): ready again.
      restarted = await startEmbeddedSqs({ port });
      await client.send(new CreateQueueCommand({ QueueName: name }));
      await waitFor(async () => (await readyz(health)).status === 200, '/readyz 200 once the queue answers', 30_000);
    } finally {
      await ingestor.stop();
      await health.close();
      client.destroy();
      await restarted?.close();
    }
  }, 120_000);
});
