import { readFileSync } from 'node:fs';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  SqsPoller,
  SqsPollerOptionsError,
  type Acknowledgement,
  type BatchHandler,
  type PolledMessage,
  type SqsPollerOptions,
} from '../../../services/ingestor/sqs-poller.js';
import { startRestartableSqs, startSqsHarness, uniqueName, waitFor, type SqsHarness } from '../../support/ingestor-harness.js';

let sqs: SqsHarness;
const running: SqsPoller[] = [];

beforeAll(async () => {
  sqs = await startSqsHarness();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((poller) => poller.stop()));
});
afterAll(async () => {
  await sqs?.close();
});

const FAST = { batchSize: 10, waitTimeSeconds: 1, pollers: 1, backoff: { baseMs: 50, maxMs: 400 } } as const;

function poller(queueUrl: string, handleBatch: BatchHandler, options: Partial<SqsPollerOptions> = {}, client: SQSClient = sqs.sqs, events: ConstructorParameters<typeof SqsPoller>[0]['events'] = {}): SqsPoller {
  const created = new SqsPoller({ sqs: client, options: { queueUrl, ...FAST, ...options }, handleBatch, events });
  running.push(created);
  return created;
}

/** Every delivery the handler saw, in order. */
interface Delivery {
  message: PolledMessage;
  at: number;
}

/** What is visible on the queue now, left there (visibility 0); one entry per message. */
async function visibleBodies(queueUrl: string): Promise<string[]> {
  const out = await sqs.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
  // With visibility 0 the emulator may list a message more than once in one receive.
  const byId = new Map((out.Messages ?? []).map((message) => [message.MessageId, message.Body ?? '']));
  return [...byId.values()].sort();
}

describe('SqsPoller: the SQS transport', () => {
  it('deletes only the messages the handler reports as succeeded; the others stay on the queue', async () => {
    // 2 s: longer than the 1 s long poll, which the emulator holds open for its whole wait
    // (with 1 s it would hand a message back within the same receive).
    const queueUrl = await sqs.createQueue(uniqueName('acknowledge'), { visibilityTimeoutSeconds: 2 });
    const before = Date.now();
    await sqs.send(queueUrl, ['ok-1', 'fail-1', 'ok-2', 'fail-2']);
    const after = Date.now();
    const deliveries: Delivery[] = [];
    const acks: Acknowledgement[] = [];
    const transport = poller(queueUrl, async (messages) => {
      deliveries.push(...messages.map((message) => ({ message, at: Date.now() })));
      return {
        succeeded: messages.filter((message) => message.body.startsWith('ok')).map((message) => message.messageId),
        onAcknowledged: (ack) => acks.push(ack),
      };
    });
    transport.start();
    await waitFor(() => acks.reduce((sum, ack) => sum + ack.deleted, 0) === 2, 'the two succeeded messages deleted');
    await transport.stop();

    expect(acks.every((ack) => ack.failed === 0 && ack.error === undefined)).toBe(true);
    // The receive attributes reach the handler: the send time and the first delivery's count.
    const first = deliveries.filter((delivery) => delivery.message.receiveCount === 1).map((delivery) => delivery.message);
    expect(first.map((message) => message.body).sort()).toEqual(['fail-1', 'fail-2', 'ok-1', 'ok-2']);
    for (const message of first) {
      expect(message.sentAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
      expect(message.sentAt.getTime()).toBeLessThanOrEqual(after + 1000);
      expect(message.receiptHandle).not.toBe('');
    }
    // Deleted: only the two the handler vouched for; the failed ones are still there.
    expect(await sqs.remaining(queueUrl)).toBe(2);
    let visible: string[] = [];
    await waitFor(async () => (visible = await visibleBodies(queueUrl)).length >= 2, 'the failed messages visible again');
    expect(visible).toEqual(['fail-1', 'fail-2']);
  });

  it('lets a message the handler failed (or threw on) come back after the visibility timeout, then deletes it', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('redeliver'), { visibilityTimeoutSeconds: 2 });
    await sqs.send(queueUrl, ['refused', 'thrown']);
    const deliveries: Delivery[] = [];
    let handled = 0;
    const transport = poller(queueUrl, async (messages) => {
      deliveries.push(...messages.map((message) => ({ message, at: Date.now() })));
      const succeeded: string[] = [];
      for (const message of messages) {
        if (message.receiveCount === 1 && message.body === 'thrown') throw new Error('handler failed');
        if (message.receiveCount === 1) continue;
        succeeded.push(message.messageId);
      }
      return { succeeded, onAcknowledged: (ack) => void (handled += ack.deleted) };
      // Short polls: the emulator holds a long poll open for its whole wait, which would blur when a message came back.
    }, { waitTimeSeconds: 0, idlePauseMs: 50 });
    transport.start();
    await waitFor(() => handled === 2, 'both messages deleted on a later delivery', 20_000);
    await transport.stop();

    for (const body of ['refused', 'thrown']) {
      const mine = deliveries.filter((delivery) => delivery.message.body === body);
      const firstAt = mine.find((delivery) => delivery.message.receiveCount === 1)?.at ?? Infinity;
      const again = mine.find((delivery) => (delivery.message.receiveCount ?? 0) >= 2);
      expect(again, `${body} delivered again`).toBeDefined();
      // Not before the 2 s visibility timeout ran out (polled every 50 ms, it would be back at once without it).
      expect((again?.at ?? 0) - firstAt, `${body} came back after the visibility timeout`).toBeGreaterThanOrEqual(1_500);
    }
    expect(await sqs.remaining(queueUrl)).toBe(0);
  });

  it('backs off while SQS is unreachable and recovers when the server is back', async () => {
    const server = await startRestartableSqs();
    try {
      const created = await server.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('outage'), Attributes: { VisibilityTimeout: '5' } }));
      const queueUrl = created.QueueUrl ?? '';
      const errors: { failures: number; delayMs: number }[] = [];
      const bodies: string[] = [];
      // Its own client: the shared one must not keep sockets to a server that goes away.
      const client = new SQSClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: 1 });
      const transport = poller(
        queueUrl,
        async (messages) => {
          bodies.push(...messages.map((message) => message.body));
          return { succeeded: messages.map((message) => message.messageId) };
        },
        { backoff: { baseMs: 50, maxMs: 400 } },
        client,
        { onReceiveError: ({ failures, delayMs }) => errors.push({ failures, delayMs }) },
      );
      transport.start();
      await expect(transport.checkQueue(2_000)).resolves.toBeUndefined();

      await server.stop();
      await waitFor(() => errors.length >= 5, 'five failed receives');
      await expect(transport.checkQueue(2_000)).rejects.toThrow();
      // Exponential back-off with equal jitter: each wait is within [window/2, window], window = min(max, base·2^(n-1)).
      errors.slice(0, 5).forEach(({ failures, delayMs }, index) => {
        expect(failures).toBe(index + 1);
        const window = Math.min(400, 50 * 2 ** index);
        expect(delayMs).toBeGreaterThanOrEqual(window / 2);
        expect(delayMs).toBeLessThanOrEqual(window);
      });
      expect(transport.state).toBe('polling');

      await server.restart();
      await server.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'after the outage' }));
      await waitFor(() => bodies.includes('after the outage'), 'the message received after the restart');
      await expect(transport.checkQueue(2_000)).resolves.toBeUndefined();
      await transport.stop();
      const left = await server.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, VisibilityTimeout: 0 }));
      expect(left.Messages ?? []).toEqual([]);
      client.destroy();
    } finally {
      await server.close();
    }
  });

  it('stop() waits for the batch in the handler and its delete, and receives nothing more', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('drain'), { visibilityTimeoutSeconds: 30 });
    await sqs.send(queueUrl, ['in flight']);
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    let acknowledged: Acknowledgement | undefined;
    // Every ReceiveMessage the poller sends, counted as it leaves (the real client, one middleware).
    const counting = new SQSClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    let receivesSent = 0;
    counting.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'ReceiveMessageCommand') receivesSent += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countReceives' },
    );
    try {
      const transport = poller(
        queueUrl,
        async (messages) => {
          calls += 1;
          await gate;
          return { succeeded: messages.map((message) => message.messageId), onAcknowledged: (ack) => void (acknowledged = ack) };
        },
        {},
        counting,
      );
      transport.start();
      await waitFor(() => calls === 1, 'the batch in the handler');
      let stopped = false;
      const stopping = transport.stop().then(() => {
        stopped = true;
      });
      const sentBeforeStop = receivesSent;
      expect(transport.state).toBe('stopping');
      // The handler still holds the batch: stop() cannot have resolved, and the message is not deleted.
      await waitFor(async () => (await sqs.remaining(queueUrl)) === 1, 'the message still on the queue');
      expect(stopped).toBe(false);
      await sqs.send(queueUrl, ['sent after stop()']);
      release();
      await stopping;
      expect(transport.state).toBe('stopped');
      expect(acknowledged).toEqual({ deleted: 1, failed: 0, failedCodes: [] });
      // Nothing more handled, no receive sent after stop() (the long poll in flight was abandoned),
      // and the message sent afterwards is still on the queue (visible, or back after its visibility
      // timeout if the abandoned long poll took it server-side).
      expect(calls).toBe(1);
      expect(receivesSent).toBe(sentBeforeStop);
      expect(transport.stats()).toMatchObject({ receiving: 0, handling: 0, inFlightMessages: 0 });
      expect(await sqs.remaining(queueUrl)).toBe(1);
    } finally {
      counting.destroy();
    }
  });

  it('goes idle → polling → stopping → stopped once: start() and stop() are idempotent and a stopped poller stays stopped', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('lifecycle'));
    let calls = 0;
    const transport = poller(queueUrl, async (messages) => {
      calls += 1;
      return { succeeded: messages.map((message) => message.messageId) };
    });
    expect(transport.state).toBe('idle');
    transport.start();
    transport.start();
    expect(transport.state).toBe('polling');
    const first = transport.stop();
    expect(transport.stop()).toBe(first);
    await first;
    expect(transport.state).toBe('stopped');
    transport.start();
    expect(transport.state).toBe('stopped');
    await sqs.send(queueUrl, ['after stop']);
    // Nothing polls: the message stays visible.
    expect(await visibleBodies(queueUrl)).toEqual(['after stop']);
    expect(calls).toBe(0);

    const never = poller(queueUrl, async () => ({ succeeded: [] }));
    await never.stop();
    expect(never.state).toBe('stopped');
  });

  it('reports a delete SQS refused to the handler instead of throwing', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('delete-refused'), { visibilityTimeoutSeconds: 30 });
    await sqs.send(queueUrl, ['one']);
    const acks: Acknowledgement[] = [];
    // A client whose DeleteMessageBatch goes to a queue that does not exist: the call itself fails.
    const wrongQueue = new SQSClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    wrongQueue.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteMessageBatchCommand') (args.input as { QueueUrl: string }).QueueUrl = `${queueUrl}-missing`;
        return next(args);
      },
      { step: 'initialize', name: 'misdirectDeletes' },
    );
    try {
      const transport = poller(queueUrl, async (messages) => ({ succeeded: messages.map((message) => message.messageId), onAcknowledged: (ack) => void acks.push(ack) }), {}, wrongQueue);
      transport.start();
      await waitFor(() => acks.length === 1, 'the acknowledgement');
      await transport.stop();
      expect(acks[0]).toMatchObject({ deleted: 0, failed: 1 });
      expect(acks[0]?.error).toBeInstanceOf(Error);
      expect(await sqs.remaining(queueUrl)).toBe(1);
    } finally {
      wrongQueue.destroy();
    }
  });

  it.each<[string, Partial<SqsPollerOptions>, RegExp]>([
    ['queueUrl', { queueUrl: 'not a url' }, /option queueUrl: must be the queue URL \(got "not a url"\)/],
    ['batchSize', { batchSize: 0 }, /option batchSize: must be an integer from 1 to 10 \(got 0\)/],
    ['batchSize', { batchSize: 11 }, /option batchSize: .*\(got 11\)/],
    ['batchSize', { batchSize: 2.5 }, /option batchSize: .*\(got 2.5\)/],
    ['waitTimeSeconds', { waitTimeSeconds: 21 }, /option waitTimeSeconds: must be an integer from 0 to 20 \(got 21\)/],
    ['visibilityTimeoutSeconds', { visibilityTimeoutSeconds: -1 }, /option visibilityTimeoutSeconds: must be an integer from 0 to 43200/],
    ['pollers', { pollers: 0 }, /option pollers: must be an integer from 1 to 256 \(got 0\)/],
    ['minPollers', { pollers: 2, minPollers: 3 }, /option minPollers: must not be above pollers/],
    ['maxPollers', { pollers: 4, maxPollers: 3 }, /option maxPollers: must not be below pollers/],
    ['pollers', { pollers: Number.NaN }, /option pollers: /],
    ['backoff.baseMs', { backoff: { baseMs: 0, maxMs: 100 } }, /option backoff\.baseMs: must be a positive number/],
    ['backoff.maxMs', { backoff: { baseMs: 100, maxMs: 50 } }, /option backoff\.maxMs: maxMs must not be below baseMs/],
  ])('refuses an invalid %s at construction, naming it', (option, override, message) => {
    let sent = 0;
    const client = new SQSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    client.middlewareStack.add((next) => (args) => ((sent += 1), next(args)), { step: 'initialize', name: 'count' });
    const build = () => new SqsPoller({ sqs: client, options: { queueUrl: 'http://localhost:1/000000000000/q', ...FAST, ...override }, handleBatch: async () => ({ succeeded: [] }) });
    expect(build).toThrow(SqsPollerOptionsError);
    expect(build).toThrow(message);
    try {
      build();
    } catch (error) {
      expect((error as SqsPollerOptionsError).option).toBe(option);
    }
    expect(sent).toBe(0);
    client.destroy();
  });

  it('imports nothing of the domain: only the SQS client, zod, node:events, the back-off, the concurrency limit and the deleter', () => {
    const importsOf = (file: string) => {
      const source = readFileSync(new URL(`../../../services/ingestor/${file}`, import.meta.url), 'utf8');
      return [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((match) => match[1]).sort();
    };
    expect(importsOf('sqs-poller.ts')).toEqual(['./backoff.js', './concurrency-limit.js', './sqs-deleter.js', '@aws-sdk/client-sqs', 'node:events', 'zod']);
    expect(importsOf('sqs-deleter.ts')).toEqual(['@aws-sdk/client-sqs']);
    expect(importsOf('concurrency-limit.ts')).toEqual([]);
    expect(importsOf('backoff.ts')).toEqual([]);
  });
});
