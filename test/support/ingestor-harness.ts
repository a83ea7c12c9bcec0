import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { createRequestHandler } from 'local-aws-sqs';
import pino, { type Logger } from 'pino';
import { LOCAL_ACCOUNT_ID, startEmbeddedSqs, type RunningSqs } from '../../local/embedded-sqs.js';

export interface SqsHarness {
  server: RunningSqs;
  sqs: SQSClient;
  /** Creates a queue with a DLQ (redrive after 5 receives) and returns its URL. */
  createQueue(name: string, options?: { visibilityTimeoutSeconds?: number }): Promise<string>;
  /** Sends bodies byte for byte (SendMessageBatch, 10 per call); returns the message ids in order. */
  send(queueUrl: string, bodies: string[]): Promise<string[]>;
  /** Messages still on the queue, visible or in flight (not deleted). */
  remaining(queueUrl: string): Promise<number>;
  close(): Promise<void>;
}

export async function startSqsHarness(): Promise<SqsHarness> {
  const server = await startEmbeddedSqs({ port: 0 });
  const sqs = new SQSClient({
    region: 'us-east-1',
    endpoint: server.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  return {
    server,
    sqs,
    async createQueue(name, options = {}) {
      const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
      const dlqAttributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }));
      const queue = await sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: {
            VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 2),
            // 1 MiB (the emulator's maximum) so the ingestor's own 256 KiB guard can be exercised.
            MaximumMessageSize: '1048576',
            RedrivePolicy: JSON.stringify({ maxReceiveCount: 5, deadLetterTargetArn: dlqAttributes.Attributes?.QueueArn }),
          },
        }),
      );
      if (queue.QueueUrl === undefined) throw new Error('CreateQueue returned no URL');
      return queue.QueueUrl;
    },
    async send(queueUrl, bodies) {
      const ids: string[] = [];
      for (let start = 0; start < bodies.length; start += 10) {
        const chunk = bodies.slice(start, start + 10);
        const out = await sqs.send(
          new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((MessageBody, index) => ({ Id: String(index), MessageBody })) }),
        );
        if ((out.Failed?.length ?? 0) > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed)}`);
        const byId = new Map((out.Successful ?? []).map((entry) => [entry.Id, entry.MessageId]));
        chunk.forEach((_, index) => ids.push(byId.get(String(index)) ?? ''));
      }
      return ids;
    },
    async remaining(queueUrl) {
      // The emulator's ApproximateNumberOfMessages already counts in-flight messages (real SQS does not).
      const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
      return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
    },
    async close() {
      sqs.destroy();
      await server.close();
    },
  };
}

/** A pino logger writing to memory, so tests can scan every line for plaintext. */
export function capturedLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface LoginFields {
  user_id: string;
  app_version: string;
  device_type: string;
  ip: string;
  locale: string | null;
  device_id: string;
}

let counter = 0;
/** A well-formed login event with distinct PII unless overridden. */
export function loginEvent(overrides: Partial<LoginFields> = {}): LoginFields {
  counter += 1;
  const n = counter;
  return {
    user_id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    app_version: '2.3.0',
    device_type: n % 2 === 0 ? 'ios' : 'android',
    ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
    locale: 'RU',
    device_id: `${String(100 + (n % 900)).padStart(3, '0')}-${String(n % 100).padStart(2, '0')}-${String(n % 10_000).padStart(4, '0')}`,
    ...overrides,
  };
}

/**
 * A TCP proxy in front of PostgreSQL that a test can cut and restore: "the database is
 * unreachable" with the real driver and real connection errors.
 */
export interface CuttableProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startCuttableProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return {
    port,
    cut: stop,
    restore: async () => {
      await listen(port);
    },
    close: stop,
  };
}

/**
 * The SQS emulator behind an HTTP server that a test can stop and start again on the same
 * port, queues and messages kept: "SQS is unreachable" with real connection errors.
 */
export interface RestartableSqs {
  endpoint: string;
  sqs: SQSClient;
  stop(): Promise<void>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startRestartableSqs(): Promise<RestartableSqs> {
  const { service, requestHandler } = createRequestHandler({ port: 0, hostname: 'localhost', accountId: LOCAL_ACCOUNT_ID, emulateQueueCreationLifecycle: false });
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const next = createHttpServer((req, res) => void requestHandler(req, res));
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => {
        server = next;
        resolve((next.address() as AddressInfo).port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      const running = server;
      server = undefined;
      if (running === undefined) return resolve();
      running.closeAllConnections();
      running.close(() => resolve());
    });
  const port = await listen(0);
  // As local/embedded-sqs.ts: the emulator builds queue URLs from the port it was told.
  (service as unknown as { PORT: number }).PORT = port;
  const endpoint = `http://localhost:${port}`;
  const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  return {
    endpoint,
    sqs,
    stop,
    restart: async () => {
      await listen(port);
    },
    close: async () => {
      sqs.destroy();
      await stop();
    },
  };
}
