/**
 * npm run bench:ingest [-- --messages 20000 --ips 20000 --devices 30000 --naive 3000 --pollers 8 --batch 1000 --sink-only]
 *
 * Starts its own embedded PostgreSQL, an SQS emulator (child process) and a local keyring,
 * then measures, in one run, on the same synthetic messages:
 *   (a) sink only: validate + tokenise + encrypt + one transaction per batch
 *   (b) raw COPY of the same final rows into the same tables (the database's ceiling)
 *   (c) the full path: SQS → ingestor pollers → PostgreSQL → DeleteMessageBatch
 *   (d) queue only: the same pollers receiving and deleting, no processing (ceiling for c)
 *   (e) naive: one message per receive, per transaction, per delete (the baseline)
 *
 * With --partitioning [--rows 10000000]: instead, the sink into the monthly-partitioned
 * user_logins vs an unpartitioned copy, both preloaded with --rows rows, in the same run, plus
 * retention of one month and erasure of one person (bench/lifecycle/run.ts, also `npm run bench:lifecycle`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { createDatabase } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { DataKeyRing } from '../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../lib/keys/token-keys.js';
import { KnownTokens } from '../services/ingestor/known-tokens.js';
import type { InboundMessage } from '../services/ingestor/message.js';
import { createSink } from '../services/ingestor/sink.js';
import { createIngestor } from '../services/ingestor/worker.js';
import { copyFrom, copyPayload } from './ingest/copy.js';
import { syntheticBodies } from './ingest/messages.js';
import { drainQueueOnly, fillQueue, naiveConsumer } from './ingest/queue.js';
import { RssSampler } from './ingest/rss.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    ips: { type: 'string', default: '20000' },
    devices: { type: 'string', default: '30000' },
    naive: { type: 'string', default: '3000' },
    pollers: { type: 'string', default: '8' },
    batch: { type: 'string', default: '1000' },
    'sink-concurrency': { type: 'string', default: '2' },
    // Group-commit transactions in flight per process (the sink's `writers`, INGEST_WRITERS).
    writers: { type: 'string', default: '2' },
    // Quick iterations on the storage path: only (a) and (b).
    'sink-only': { type: 'boolean', default: false },
    partitioning: { type: 'boolean', default: false },
    rows: { type: 'string', default: '10000000' },
  },
});
const N = Number(args.messages);
const NAIVE = Math.min(Number(args.naive), N);
const POLLERS = Number(args.pollers);
const BATCH = Number(args.batch);
const SINK_CONCURRENCY = Number(args['sink-concurrency']);
const WRITERS = Number(args.writers);
const WAIT_SECONDS = 1;

const rss = new RssSampler();
const cleanups: (() => Promise<unknown>)[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  if (args.partitioning) {
    const { runLifecycleBench } = await import('./lifecycle/run.js');
    await runLifecycleBench({ rows: Number(args.rows), messages: Math.min(N, 50_000), batch: BATCH, persons: 50, log });
    return;
  }
  const bodies = syntheticBodies({ messages: N, distinctIps: Number(args.ips), distinctDevices: Number(args.devices), malformedRate: 0.01, seed: 42 });
  const validCount = bodies.filter((body) => !body.startsWith('{"foo"')).length;

  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-bench-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  log('starting PostgreSQL and the SQS emulator…');
  const postgres = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-bench-pg-' });
  cleanups.unshift(() => postgres.stop());
  const owner = createDatabase({ url: postgres.url, role: undefined, poolSize: 4 });
  cleanups.unshift(() => owner.close());
  await runMigrations(owner);
  const database = createDatabase({ url: postgres.url, role: 'ingestor', poolSize: Math.max(POLLERS, SINK_CONCURRENCY, WRITERS) + 2 }, { applicationName: 'bench' });
  cleanups.unshift(() => database.close());
  const { endpoint, child } = await startSqsProcess();
  cleanups.unshift(async () => {
    child.kill('SIGTERM');
  });
  const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  cleanups.unshift(async () => sqs.destroy());
  const keys = LocalKeyring.fromKey(randomBytes(32));
  const tokenizer = await loadActiveTokenizer(database.db, keys);
  const policy = { maxUses: 1_000_000, maxAgeMs: 3_600_000 };
  const truncate = () => owner.pool.query('TRUNCATE user_logins, pii_vault, quarantine');
  const counts = async () => {
    const { rows } = await owner.pool.query(
      `SELECT (SELECT count(*) FROM user_logins)::int AS logins, (SELECT count(*) FROM pii_vault)::int AS vault, (SELECT count(*) FROM quarantine)::int AS quarantine`,
    );
    return rows[0] as { logins: number; vault: number; quarantine: number };
  };

  // (a) sink only
  log(`(a) sink: ${N} messages in batches of ${BATCH}, ${SINK_CONCURRENCY} concurrent, ${WRITERS} writers…`);
  rss.enter('a sink');
  const sentAt = new Date();
  const inbound: InboundMessage[] = bodies.map((body) => ({ messageId: randomUUID(), body, sentAt, receiveCount: 1 }));
  const sink = createSink({ database, dataKeys: new DataKeyRing(database.db, keys, policy), tokenizer: () => tokenizer, knownTokens: new KnownTokens(100_000), writers: WRITERS });
  let nextBatch = 0;
  const sinkStarted = performance.now();
  await Promise.all(
    Array.from({ length: SINK_CONCURRENCY }, async () => {
      for (;;) {
        const start = nextBatch;
        nextBatch += BATCH;
        if (start >= inbound.length) return;
        await sink.write(inbound.slice(start, start + BATCH));
      }
    }),
  );
  const sinkSeconds = (performance.now() - sinkStarted) / 1000;
  const afterSink = await counts();
  check(afterSink.logins === validCount && afterSink.quarantine === N - validCount, `sink stored ${JSON.stringify(afterSink)}`);

  // (b) COPY of the same final rows
  log('(b) COPY of the same rows…');
  rss.enter('b copy');
  const tables = {
    pii_vault: 'token, field, ciphertext, data_key_id, token_key_version, created_at',
    user_logins:
      'message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, app_version_major, app_version_minor, app_version_patch, create_date, sent_at, ingested_at, token_key_version',
    quarantine: 'message_id, reasons, body_ciphertext, data_key_id, body_bytes, sent_at, receive_count, received_at',
  } as const;
  const payloads: { table: string; columns: string; chunks: Buffer[] }[] = [];
  for (const [table, columns] of Object.entries(tables)) {
    const { rows } = await owner.pool.query({ text: `SELECT ${columns} FROM ${table}`, rowMode: 'array' });
    payloads.push({ table, columns, chunks: copyPayload(rows as unknown[][]) });
  }
  await truncate();
  const copyClient = await owner.pool.connect();
  const copyStarted = performance.now();
  try {
    await copyClient.query('BEGIN');
    for (const { table, columns, chunks } of payloads) await copyFrom(copyClient, `COPY ${table} (${columns}) FROM STDIN`, chunks);
    await copyClient.query('COMMIT');
  } finally {
    copyClient.release();
  }
  const copySeconds = (performance.now() - copyStarted) / 1000;
  payloads.length = 0;
  const afterCopy = await counts();
  check(afterCopy.logins === afterSink.logins && afterCopy.vault === afterSink.vault, `copy stored ${JSON.stringify(afterCopy)}`);

  if (args['sink-only']) {
    const fmt = (value: number) => Math.round(value).toLocaleString('en-US');
    console.table([
      { path: '(a) sink only', messages: N, seconds: sinkSeconds.toFixed(2), 'msg/s': fmt(N / sinkSeconds) },
      { path: '(b) raw COPY', messages: N, seconds: copySeconds.toFixed(2), 'msg/s': fmt(N / copySeconds) },
    ]);
    console.log(`(a)/(b) = ${(copySeconds / sinkSeconds).toFixed(2)}`);
    return;
  }

  // (d) queue only (before (c) so both start from a freshly filled queue)
  const queueUrl = await createQueue(sqs, 'bench-queue-only');
  log(`(d) filling the queue with ${N} messages…`);
  rss.enter('fill');
  await fillQueue(sqs, queueUrl, bodies);
  log(`(d) queue only: ${POLLERS} pollers receive + delete…`);
  rss.enter('d queue only');
  const queueSeconds = await drainQueueOnly(sqs, queueUrl, N, POLLERS, WAIT_SECONDS);

  // (c) full path
  await truncate();
  const fullQueueUrl = await createQueue(sqs, 'bench-full');
  log(`(c) filling the queue with ${N} messages…`);
  rss.enter('fill');
  await fillQueue(sqs, fullQueueUrl, bodies);
  log(`(c) full path: ingestor with ${POLLERS} pollers…`);
  rss.enter('c full path');
  const ingestor = createIngestor({
    sqs,
    queueUrl: fullQueueUrl,
    database,
    keys,
    logger: pino({ level: 'warn' }),
    options: { pollers: POLLERS, waitTimeSeconds: WAIT_SECONDS },
  });
  const fullStarted = performance.now();
  await ingestor.start();
  while (handled(ingestor.stats()) < N) await new Promise((resolve) => setTimeout(resolve, 10));
  const fullSeconds = (performance.now() - fullStarted) / 1000;
  await ingestor.stop();
  const afterFull = await counts();
  check(afterFull.logins === validCount && afterFull.quarantine === N - validCount, `full path stored ${JSON.stringify(afterFull)}`);

  // (e) naive baseline, time-boxed to NAIVE messages
  await truncate();
  const naiveQueueUrl = await createQueue(sqs, 'bench-naive');
  rss.enter('fill');
  await fillQueue(sqs, naiveQueueUrl, bodies.slice(0, NAIVE));
  log(`(e) naive: ${NAIVE} messages one at a time…`);
  rss.enter('e naive');
  const naiveSeconds = await naiveConsumer({
    sqs,
    queueUrl: naiveQueueUrl,
    total: NAIVE,
    database,
    dataKeys: new DataKeyRing(database.db, keys, policy),
    tokenizer,
  });
  rss.enter('done');
  rss.stop();

  const rate = (messages: number, seconds: number) => messages / seconds;
  const a = rate(N, sinkSeconds);
  const b = rate(N, copySeconds);
  const c = rate(N, fullSeconds);
  const d = rate(N, queueSeconds);
  const e = rate(NAIVE, naiveSeconds);
  const fmt = (value: number) => Math.round(value).toLocaleString('en-US');
  console.log(`\nbench:ingest — ${N} messages (${validCount} valid), ${args.ips} distinct IPs, ${args.devices} distinct devices, 2-core machine\n`);
  console.table([
    { path: '(a) sink only: validate+tokenise+encrypt+1 tx/batch', messages: N, seconds: sinkSeconds.toFixed(2), 'msg/s': fmt(a) },
    { path: '(b) raw COPY of the same final rows (1 tx)', messages: N, seconds: copySeconds.toFixed(2), 'msg/s': fmt(b) },
    { path: `(c) full path: SQS → ${POLLERS} pollers → PG → delete`, messages: N, seconds: fullSeconds.toFixed(2), 'msg/s': fmt(c) },
    { path: `(d) queue only: ${POLLERS} pollers receive+delete`, messages: N, seconds: queueSeconds.toFixed(2), 'msg/s': fmt(d) },
    { path: '(e) naive: 1 msg/receive, 1 tx, 1 delete', messages: NAIVE, seconds: naiveSeconds.toFixed(2), 'msg/s': fmt(e) },
  ]);
  console.log('ratios');
  console.table([
    { ratio: '(a)/(b) sink vs COPY', value: (a / b).toFixed(2), target: '≥ 0.5' },
    { ratio: '(c)/(d) full path vs queue only', value: (c / d).toFixed(2), target: '≥ 0.7' },
    { ratio: '(c)/(e) full path vs naive', value: (c / e).toFixed(1), target: '≥ 10' },
  ]);
  console.log(`peak RSS (process.resourceUsage().maxRSS): ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
  console.log('RSS by phase (MiB, sampled every 250 ms):');
  console.table(rss.summary());
}

function handled(stats: { stored: number; quarantined: number; duplicates: number }): number {
  return stats.stored + stats.quarantined + stats.duplicates;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`bench sanity check failed: ${what}`);
}

async function createQueue(sqs: SQSClient, name: string): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '120' } }));
  if (out.QueueUrl === undefined) throw new Error('CreateQueue returned no URL');
  return out.QueueUrl;
}

async function startSqsProcess(): Promise<{ endpoint: string; child: ChildProcess }> {
  const script = fileURLToPath(new URL('./ingest/sqs-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const endpoint = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`SQS emulator exited with ${code}`)));
  });
  return { endpoint, child };
}

try {
  await main();
} finally {
  rss.stop();
  for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
}
