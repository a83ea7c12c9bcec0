/**
 * npm run bench:ingest [-- --messages 100000 --rtt-ms 10 --ips 20000 --devices 30000 --naive 3000 --batch 1000 --writers 2 --sink-only]
 *
 * Starts its own embedded PostgreSQL, an SQS emulator (child process) and a local keyring,
 * then measures, in one run, on the same synthetic messages:
 *   (a)  sink only: validate + tokenise + tag + encrypt + COPY, batches of --batch
 *   (a0) the same sink without the row tag (the per-row cost of row authentication); (a) and (a0)
 *        run twice each, A-B-B-A, and the table shows the means
 *   (b)  raw COPY of the same final rows into the same tables (the database's ceiling)
 *   (d)  queue only, per --rtt-ms: the ingestor's transport receiving and deleting, no processing
 *   (c)  the full path, per --rtt-ms: SQS → ingestor (adaptive receives) → PostgreSQL → DeleteMessageBatch
 *   (e)  naive: one message per receive, per transaction, per delete (the baseline)
 * --writers N sets the group-commit transactions in flight in the sink (the ingestor's `writers`
 * option, default 2; not a setting of the service), --sink-concurrency N the batches (a) submits at once.
 * --fixed-pollers N adds, per round trip, the full path with N receives in flight fixed (before
 * they adapted, the default was 4).
 * --rtt-ms takes a list (0,10,20): the SQS traffic of (c) and (d) then goes through a proxy in
 * its own process that delays every chunk by half of it in each direction (local/delay-proxy.ts;
 * it stands for the network, whose CPU is not the ingestor's).
 * --sqs lean (default) serves the queue from bench/ingest/lean-sqs.ts, a queue with O(1) work per
 * message, in its own process; --sqs local-aws-sqs from the emulator the tests use, whose CPU per
 * message (100–290 µs, growing with depth) is more than the ingestor's sink on a 2-core machine.
 * Producers in another process (bench/ingest/producer.ts) put the messages on the queue: with
 * the lean queue all --messages before (c) and (d) start (a backlog to drain; its depth costs
 * nothing); with local-aws-sqs they keep --backlog (5,000) waiting during the phase instead, as
 * that emulator slows down with depth.
 *
 * With --partitioning [--rows 10000000]: instead, the sink into the monthly-partitioned
 * user_logins vs an unpartitioned copy, both preloaded with --rows rows, in the same run, plus
 * retention of one month and erasure of one person (bench/lifecycle/run.ts, also `npm run bench:lifecycle`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { createDatabase, type Database } from '../db/client.js';
import { migrate } from '../lib/runtime/migrate.js';
import { startEmbeddedPostgres } from '../local/embedded-postgres.js';
import { DataKeyRing } from '../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../lib/keys/token-keys.js';
import type { Tokenizer } from '../lib/crypto/tokens.js';
import { createIngestor, createIngestorSqsClient, createSink, KnownTokens, SqsPoller, type InboundMessage } from '../services/ingestor/index.js';
import { printTable } from './table.js';
import { copyFinalRows, readFinalRows } from './ingest/copy.js';
import { syntheticBodies } from './ingest/messages.js';
import { fillQueue, naiveConsumer } from './ingest/queue.js';
import { cpuSeconds } from './ingest/cpu.js';
import { RssSampler } from './ingest/rss.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    ips: { type: 'string', default: '20000' },
    devices: { type: 'string', default: '30000' },
    naive: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '1000' },
    'sink-concurrency': { type: 'string', default: '2' },
    // Group-commit transactions in flight per process (the sink's `writers`).
    writers: { type: 'string', default: '2' },
    // Round trips added to every SQS call of (c) and (d), a comma-separated list.
    'rtt-ms': { type: 'string', default: '0' },
    // The queue's server: lean (bench/ingest/lean-sqs.ts) or local-aws-sqs (the tests' emulator).
    sqs: { type: 'string', default: 'lean' },
    // Messages kept on the queue by the producers during (c) and (d): a standing backlog. Default:
    // all of them before the phase with the lean queue, 5,000 with local-aws-sqs.
    backlog: { type: 'string' },
    // Also run the full path with this many receives in flight, fixed (as before they adapted: 4).
    'fixed-pollers': { type: 'string' },
    // Quick iterations on the storage path: only (a), (a0) and (b).
    'sink-only': { type: 'boolean', default: false },
    partitioning: { type: 'boolean', default: false },
    rows: { type: 'string', default: '10000000' },
  },
});
const N = Number(args.messages);
const NAIVE = Math.min(Number(args.naive), N);
const BATCH = Number(args.batch);
const SINK_CONCURRENCY = Number(args['sink-concurrency']);
const WRITERS = Number(args.writers);
const RTTS = args['rtt-ms'].split(',').map((value) => Number(value.trim()));
const SQS_KIND = args.sqs;
if (SQS_KIND !== 'lean' && SQS_KIND !== 'local-aws-sqs') throw new Error(`--sqs: ${SQS_KIND} is neither lean nor local-aws-sqs`);
const BACKLOG = Math.min(Number(args.backlog ?? (SQS_KIND === 'lean' ? N : 5000)), N);
const FIXED_POLLERS = args['fixed-pollers'] === undefined ? undefined : Number(args['fixed-pollers']);
const WAIT_SECONDS = 1;
const MAX_POLLERS = 64;

const rss = new RssSampler();
const cleanups: (() => Promise<unknown>)[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

interface Phase {
  key: string;
  path: string;
  messages: number;
  seconds: number;
  load: string;
  detail?: string;
  /** CPU seconds the phase cost, per process (undefined where /proc is not available). */
  cpu: { node: number; postgres: number | undefined; sqs: number | undefined; proxy: number | undefined; producer: number | undefined };
}

async function main(): Promise<void> {
  if (args.partitioning) {
    const { runLifecycleBench } = await import('./lifecycle/run.js');
    await runLifecycleBench({ rows: Number(args.rows), messages: Math.min(N, 50_000), batch: BATCH, persons: 50, log });
    return;
  }
  for (const rtt of RTTS) if (!(Number.isFinite(rtt) && rtt >= 0 && rtt <= 1000)) throw new Error(`--rtt-ms: ${args['rtt-ms']} is not a list of milliseconds from 0 to 1000`);
  const loadAtStart = loadavg();
  const bodies = syntheticBodies({ messages: N, distinctIps: Number(args.ips), distinctDevices: Number(args.devices), malformedRate: 0.01, seed: 42 });
  const validCount = bodies.filter((body) => !body.startsWith('{"foo"')).length;

  log('starting PostgreSQL and the SQS emulator…');
  const postgres = await startEmbeddedPostgres({ temporaryPrefix: 'tokenvault-bench-pg-' });
  cleanups.unshift(() => postgres.stop());
  const owner = createDatabase({ url: postgres.url, role: undefined, poolSize: 4 });
  cleanups.unshift(() => owner.close());
  await migrate(owner);
  const database = createDatabase({ url: postgres.url, role: 'ingestor', poolSize: Math.max(SINK_CONCURRENCY, WRITERS) + 4 }, { applicationName: 'bench' });
  cleanups.unshift(() => database.close());
  const { endpoint, child } = await startSqsProcess(SQS_KIND);
  cleanups.unshift(async () => {
    child.kill('SIGTERM');
  });
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials });
  cleanups.unshift(async () => sqs.destroy());
  const keys = LocalKeyring.fromKey(randomBytes(32));
  const tokenizer = await loadActiveTokenizer(database.db, keys);
  const policy = { maxUses: 1_000_000, maxAgeMs: 3_600_000 };
  const truncate = () => owner.pool.query('TRUNCATE user_logins, pii_vault, quarantine');
  const counts = async () => {
    const { rows } = await owner.pool.query(
      `SELECT (SELECT count(*) FROM user_logins)::int AS logins, (SELECT count(*) FROM pii_vault)::int AS vault, (SELECT count(*) FROM quarantine)::int AS quarantine,
              (SELECT count(*) FROM user_logins WHERE row_mac IS NOT NULL)::int AS tagged`,
    );
    return rows[0] as { logins: number; vault: number; quarantine: number; tagged: number };
  };
  const phases: Phase[] = [];
  const measure = async (
    key: string,
    path: string,
    messages: number,
    run: () => Promise<number>,
    detail?: () => string,
    producer?: { done: Promise<number> },
    proxyPid?: number,
  ): Promise<number> => {
    rss.enter(key);
    const before = { node: process.cpuUsage(), postgres: cpuSeconds(postgres.pid, true), sqs: cpuSeconds(child.pid ?? -1), proxy: proxyPid === undefined ? undefined : cpuSeconds(proxyPid) };
    const seconds = await run();
    const node = process.cpuUsage(before.node);
    const postgresAfter = cpuSeconds(postgres.pid, true);
    const sqsAfter = cpuSeconds(child.pid ?? -1);
    const proxyAfter = proxyPid === undefined ? undefined : cpuSeconds(proxyPid);
    const cpu = {
      node: (node.user + node.system) / 1e6,
      postgres: postgresAfter === undefined || before.postgres === undefined ? undefined : postgresAfter - before.postgres,
      sqs: sqsAfter === undefined || before.sqs === undefined ? undefined : sqsAfter - before.sqs,
      proxy: proxyAfter === undefined || before.proxy === undefined ? undefined : proxyAfter - before.proxy,
      producer: producer === undefined ? undefined : await producer.done,
    };
    phases.push({ key, path, messages, seconds, load: loadavg(), cpu, ...(detail === undefined ? {} : { detail: detail() }) });
    return seconds;
  };

  // Warm-up (JIT, data key, first partitions), not measured.
  await runSink(database, keys, tokenizer, policy, bodies.slice(0, 2_000), true);
  await truncate();

  // With and without the row tag in A-B-B-A order (first runs pay for warm-up and heap growth): the mean of each pair.
  const sinkRuns: Record<'a' | 'a0', Phase[]> = { a: [], a0: [] };
  for (const tagged of [true, false, false, true]) {
    const key = tagged ? 'a' : 'a0';
    log(`(${key}) sink${tagged ? '' : ' without the row tag'}: ${N} messages in batches of ${BATCH}, ${SINK_CONCURRENCY} concurrent, ${WRITERS} writers…`);
    await truncate();
    await measure(key, '', N, () => runSink(database, keys, tokenizer, policy, bodies, tagged));
    sinkRuns[key].push(phases.pop() as Phase);
    const stored = await counts();
    check(stored.logins === validCount && stored.tagged === (tagged ? validCount : 0) && stored.quarantine === N - validCount, `sink stored ${JSON.stringify(stored)}`);
  }
  phases.push(meanOf(sinkRuns.a, 'a', '(a) sink only: validate+tokenise+tag+encrypt+COPY'), meanOf(sinkRuns.a0, 'a0', '(a0) sink only, without the row MAC'));
  const afterSink = await counts();

  log('(b) COPY of the same rows…');
  rss.enter('b read rows');
  let payloads = await readFinalRows(owner.pool);
  await truncate();
  await measure('b', '(b) raw COPY of the same final rows (1 tx)', N, () => copyFinalRows(owner.pool, payloads));
  payloads = [];
  const afterCopy = await counts();
  check(afterCopy.logins === afterSink.logins && afterCopy.vault === afterSink.vault, `copy stored ${JSON.stringify(afterCopy)}`);
  const tagMicros = tagCostMicros(tokenizer, Math.min(N, 100_000));

  if (!args['sink-only']) {
    for (const rtt of RTTS) {
      const proxy = await startProxyProcess(endpoint, rtt);
      const viaProxy = createIngestorSqsClient({ region: 'us-east-1', endpoint: proxy.endpoint, maxPollers: MAX_POLLERS, credentials });
      try {
        // (d) queue only: the same transport, a handler that stores nothing.
        const queueOnlyUrl = await createQueue(sqs, `bench-queue-only-${rtt}`);
        log(`(d) producers: ${N} messages, ${BACKLOG} kept on the queue…`);
        rss.enter('fill');
        const queueOnlyProducer = await producerFor(endpoint, queueOnlyUrl);
        log(`(d) queue only @ ${rtt} ms: adaptive receives + delete…`);
        let peak = 0;
        await measure(`d${rtt}`, `(d) queue only @ ${rtt} ms RTT: receive + delete, no processing`, N, async () => {
          let handledCount = 0;
          const transport = new SqsPoller({
            sqs: viaProxy,
            options: { queueUrl: queueOnlyUrl, batchSize: 10, waitTimeSeconds: WAIT_SECONDS, pollers: 4, maxPollers: MAX_POLLERS },
            handleBatch: async (messages) => {
              handledCount += messages.length;
              return { succeeded: messages.map((message) => message.messageId) };
            },
          });
          const started = performance.now();
          transport.start();
          while (handledCount < N) {
            peak = Math.max(peak, transport.stats().limit);
            await sleep(20);
          }
          const seconds = (performance.now() - started) / 1000;
          await transport.stop();
          return seconds;
        }, () => `limit peak ${peak}`, queueOnlyProducer, proxy.pid);

        for (const fixed of FIXED_POLLERS === undefined ? [undefined] : [undefined, FIXED_POLLERS]) {
          const name = fixed === undefined ? `c${rtt}` : `c${rtt}-fixed${fixed}`;
          await truncate();
          const fullUrl = await createQueue(sqs, `bench-full-${rtt}-${fixed ?? 'adaptive'}`);
          log(`(c) producers: ${N} messages, ${BACKLOG} kept on the queue…`);
          rss.enter('fill');
          const fullProducer = await producerFor(endpoint, fullUrl);
          log(`(c) full path @ ${rtt} ms: ingestor with ${fixed === undefined ? 'adaptive receives' : `${fixed} receives, fixed`}…`);
          let fullPeak = 0;
          const label = fixed === undefined ? '' : ` (${fixed} receives fixed)`;
          await measure(name, `(c) full path @ ${rtt} ms RTT${label}: SQS → ingestor → PG → delete`, N, async () => {
            const ingestor = createIngestor({
              sqs: viaProxy,
              queueUrl: fullUrl,
              database,
              keys,
              logger: pino({ level: 'warn' }),
              options: { waitTimeSeconds: WAIT_SECONDS, ...(fixed === undefined ? { maxPollers: MAX_POLLERS } : { pollers: fixed, minPollers: fixed, maxPollers: fixed }) },
            });
            const started = performance.now();
            await ingestor.start();
            while (handled(ingestor.stats()) < N) {
              fullPeak = Math.max(fullPeak, ingestor.stats().transport.limit);
              await sleep(20);
            }
            const seconds = (performance.now() - started) / 1000;
            await ingestor.stop();
            return seconds;
          }, () => `limit peak ${fullPeak}`, fullProducer, proxy.pid);
          const afterFull = await counts();
          check(afterFull.logins === validCount && afterFull.quarantine === N - validCount, `full path stored ${JSON.stringify(afterFull)}`);
        }
      } finally {
        viaProxy.destroy();
        await proxy.close();
      }
    }

    // (e) naive baseline, time-boxed to NAIVE messages, no added latency
    await truncate();
    const naiveQueueUrl = await createQueue(sqs, 'bench-naive');
    rss.enter('fill');
    await fillQueue(sqs, naiveQueueUrl, bodies.slice(0, NAIVE));
    log(`(e) naive: ${NAIVE} messages one at a time…`);
    await measure('e', '(e) naive @ 0 ms: 1 msg/receive, 1 tx, 1 delete', NAIVE, () =>
      naiveConsumer({ sqs, queueUrl: naiveQueueUrl, total: NAIVE, database, dataKeys: new DataKeyRing(database.db, keys, policy), tokenizer }),
    );
  }
  rss.enter('done');
  rss.stop();
  report(phases, { validCount, tagMicros, loadAtStart });
}

/** One row for several runs of a phase: mean seconds and CPU, the single runs in the note. */
function meanOf(runs: readonly Phase[], key: string, path: string): Phase {
  const mean = (read: (phase: Phase) => number | undefined): number | undefined => {
    const values = runs.map(read);
    return values.some((value) => value === undefined) ? undefined : (values as number[]).reduce((sum, value) => sum + value, 0) / values.length;
  };
  return {
    key,
    path,
    messages: runs[0]?.messages ?? 0,
    seconds: mean((phase) => phase.seconds) ?? 0,
    load: runs.at(-1)?.load ?? '',
    detail: `mean of ${runs.map((phase) => `${phase.seconds.toFixed(2)} s`).join(', ')}`,
    cpu: { node: mean((phase) => phase.cpu.node) ?? 0, postgres: mean((phase) => phase.cpu.postgres), sqs: mean((phase) => phase.cpu.sqs), proxy: undefined, producer: undefined },
  };
}

/** The sink over `bodies` in batches, SINK_CONCURRENCY at a time; returns seconds. */
async function runSink(database: Database, keys: LocalKeyring, tokenizer: Tokenizer, policy: { maxUses: number; maxAgeMs: number }, bodies: readonly string[], tagged: boolean): Promise<number> {
  const sentAt = new Date();
  const inbound: InboundMessage[] = bodies.map((body) => ({ messageId: randomUUID(), body, sentAt, receiveCount: 1 }));
  const sink = createSink({
    database,
    dataKeys: new DataKeyRing(database.db, keys, policy),
    tokenizer: () => tokenizer,
    knownTokens: new KnownTokens(100_000),
    writers: WRITERS,
    authenticateRows: tagged,
  });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SINK_CONCURRENCY }, async () => {
      for (;;) {
        const start = next;
        next += BATCH;
        if (start >= inbound.length) return;
        await sink.write(inbound.slice(start, start + BATCH));
      }
    }),
  );
  return (performance.now() - started) / 1000;
}

/** CPU cost of one row tag, measured alone (µs of CPU per row). */
function tagCostMicros(tokenizer: Tokenizer, rows: number): number {
  const ip = tokenizer.tokenizeCanonical('ip', '203.0.113.10');
  const device = tokenizer.tokenizeCanonical('device_id', '123-45-6789');
  const fields = Array.from({ length: rows }, (_, i) => ({
    messageId: randomUUID(),
    userId: randomUUID(),
    createDate: '2026-12-01',
    sentAtMs: 1_795_000_000_000 + i,
    deviceType: 'android',
    locale: i % 3 === 0 ? null : 'RU',
    appVersion: '2.3.0',
    ipToken: ip,
    deviceIdToken: device,
  }));
  // CPU time, not wall time: on a shared machine it is the steadier measure of work done.
  const started = process.cpuUsage();
  for (const row of fields) tokenizer.rowMac.tag(row);
  const used = process.cpuUsage(started);
  return (used.user + used.system) / rows;
}

function report(phases: Phase[], facts: { validCount: number; tagMicros: number; loadAtStart: string }): void {
  const byKey = new Map(phases.map((phase) => [phase.key, phase]));
  const rate = (key: string) => {
    const phase = byKey.get(key);
    return phase === undefined ? undefined : phase.messages / phase.seconds;
  };
  const fmt = (value: number) => Math.round(value).toLocaleString('en-US');
  const rssByPhase = new Map(rss.summary().map((row) => [row.phase, row.max]));
  console.log(
    `\nbench:ingest — ${N} messages (${facts.validCount} valid), ${args.ips} distinct IPs, ${args.devices} distinct devices, batches of ${BATCH}; ` +
      `${cpus().length} CPUs, load average at start ${facts.loadAtStart} (1/5/15 min)\n`,
  );
  const cpuCell = (seconds: number | undefined) => (seconds === undefined ? 'n/a' : seconds.toFixed(1));
  const perMessage = (phase: Phase) => {
    const { node, postgres, sqs, proxy, producer } = phase.cpu;
    return `${(((node + (postgres ?? 0) + (sqs ?? 0) + (proxy ?? 0) + (producer ?? 0)) * 1e6) / phase.messages).toFixed(0)}`;
  };
  printTable(
    ['path', 'messages', 'seconds', 'msg/s', 'CPU s: node', 'postgres', 'sqs', 'proxy', 'producers', 'CPU µs/msg', 'node µs/msg', 'max RSS MiB', 'load avg after', 'note'],
    phases.map((phase) => [
      phase.path,
      fmt(phase.messages),
      phase.seconds.toFixed(2),
      fmt(phase.messages / phase.seconds),
      cpuCell(phase.cpu.node),
      cpuCell(phase.cpu.postgres),
      cpuCell(phase.cpu.sqs),
      cpuCell(phase.cpu.proxy),
      cpuCell(phase.cpu.producer),
      perMessage(phase),
      ((phase.cpu.node * 1e6) / phase.messages).toFixed(0),
      String(rssByPhase.get(phase.key) ?? ''),
      phase.load,
      phase.detail ?? '',
    ]),
  );
  console.log(
    '(CPU s: seconds of CPU each process used during the phase — on a shared machine they say more than wall time; ' +
      "node is this process: the sink or the ingestor, plus the bench's own loops; producers: only when they ran during the phase)\n" +
      `(the queue: ${SQS_KIND === 'lean' ? 'bench/ingest/lean-sqs.ts' : 'local-aws-sqs'}; ${BACKLOG >= N ? 'all messages on it before (c) and (d) start' : `${BACKLOG} kept on it during (c) and (d)`})`,
  );
  const ratios: string[][] = [];
  const ratio = (name: string, value: number | undefined, target: string) => {
    if (value !== undefined && Number.isFinite(value)) ratios.push([name, value.toFixed(2), target]);
  };
  const a = rate('a');
  const a0 = rate('a0');
  const b = rate('b');
  ratio('(a)/(b) sink vs raw COPY', a !== undefined && b !== undefined ? a / b : undefined, '≥ 0.5');
  for (const rtt of RTTS) {
    const c = rate(`c${rtt}`);
    const d = rate(`d${rtt}`);
    ratio(`(c)/(a) full path @ ${rtt} ms vs sink only`, c !== undefined && a !== undefined ? c / a : undefined, rtt === 10 ? '≥ 0.5' : '');
    ratio(`(c)/(d) full path @ ${rtt} ms vs queue only @ ${rtt} ms`, c !== undefined && d !== undefined ? c / d : undefined, '');
    const fixed = FIXED_POLLERS === undefined ? undefined : rate(`c${rtt}-fixed${FIXED_POLLERS}`);
    ratio(`(c) adaptive vs ${FIXED_POLLERS} receives fixed @ ${rtt} ms`, c !== undefined && fixed !== undefined ? c / fixed : undefined, '');
  }
  const e = rate('e');
  const c0 = rate(`c${RTTS[0]}`);
  ratio(`(c)/(e) full path @ ${RTTS[0]} ms vs naive @ 0 ms`, c0 !== undefined && e !== undefined ? c0 / e : undefined, '≥ 10');
  ratio('(a)/(a0) sink with the row MAC vs without', a !== undefined && a0 !== undefined ? a / a0 : undefined, '');
  console.log('\nratios (same run)');
  printTable(['ratio', 'value', 'target'], ratios);
  const tA = byKey.get('a');
  const tA0 = byKey.get('a0');
  console.log(
    `\nrow MAC cost: ${facts.tagMicros.toFixed(2)} µs of CPU per row (the tag alone)` +
      (tA !== undefined && tA0 !== undefined
        ? `; the sink with vs without it: ${(((tA.cpu.node - tA0.cpu.node) * 1e6) / N).toFixed(2)} µs of ingestor CPU and ${(((tA.seconds - tA0.seconds) * 1e6) / N).toFixed(2)} µs of wall time per message`
        : ''),
  );
  console.log(`peak RSS (process.resourceUsage().maxRSS): ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
  console.log('RSS by phase (MiB, sampled every 250 ms):');
  printTable(
    ['phase', 'samples', 'first', 'min', 'max', 'last'],
    rss.summary().map((row) => [row.phase, String(row.samples), String(row.first), String(row.min), String(row.max), String(row.last)]),
  );
}

function handled(stats: { stored: number; quarantined: number; duplicates: number }): number {
  return stats.stored + stats.quarantined + stats.duplicates;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`bench sanity check failed: ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function createQueue(sqs: SQSClient, name: string): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '120' } }));
  if (out.QueueUrl === undefined) throw new Error('CreateQueue returned no URL');
  return out.QueueUrl;
}

/**
 * The producers for one phase: with a backlog of every message they finish before the phase
 * starts (undefined: no producer CPU during it); otherwise they keep the backlog during it and
 * `done` gives the CPU seconds they used.
 */
async function producerFor(endpoint: string, queueUrl: string): Promise<{ done: Promise<number> } | undefined> {
  const producer = await startProducer(endpoint, queueUrl);
  if (BACKLOG < N) return producer;
  await producer.done;
  return undefined;
}

/** Starts the producers (another process); resolves once the first backlog is on the queue. `done` gives the CPU seconds it used. */
async function startProducer(endpoint: string, queueUrl: string): Promise<{ done: Promise<number> }> {
  const script = fileURLToPath(new URL('./ingest/producer.ts', import.meta.url));
  const options = { endpoint, queueUrl, backlog: BACKLOG, messages: N, distinctIps: Number(args.ips), distinctDevices: Number(args.devices), malformedRate: 0.01, seed: 42 };
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.unshift(async () => {
    child.kill('SIGTERM');
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  let cpu = 0;
  lines.on('line', (line) => {
    const match = /^done (\S+)$/.exec(line);
    if (match !== null) cpu = Number(match[1]);
  });
  const exited = new Promise<void>((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`producer exited with ${code}`)))));
  await new Promise<void>((resolve, reject) => {
    lines.once('line', () => resolve());
    exited.catch(reject);
  });
  return { done: exited.then(() => cpu) };
}

/** A server script of bench/ingest/ in its own process; resolves with the endpoint it prints first. */
async function startServerProcess(name: string, script: string, args: string[]): Promise<{ endpoint: string; child: ChildProcess }> {
  const path = fileURLToPath(new URL(`./ingest/${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const endpoint = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { endpoint, child };
}

function startSqsProcess(kind: string): Promise<{ endpoint: string; child: ChildProcess }> {
  return startServerProcess('SQS server', 'sqs-server.ts', [kind]);
}

/** The delaying proxy in its own process (bench/ingest/delay-proxy-server.ts). */
async function startProxyProcess(target: string, rttMs: number): Promise<{ endpoint: string; pid: number | undefined; close(): Promise<void> }> {
  const { endpoint, child } = await startServerProcess('delay proxy', 'delay-proxy-server.ts', [target, String(rttMs)]);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    endpoint,
    pid: child.pid,
    close: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

try {
  await main();
} finally {
  rss.stop();
  for (const cleanup of cleanups) await cleanup().catch((error: unknown) => log(`cleanup: ${String(error)}`));
}
