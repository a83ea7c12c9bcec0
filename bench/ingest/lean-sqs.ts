import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A lean SQS queue for bench:ingest: the JSON protocol (what the AWS SDK v3 speaks) for the calls
 * the bench and the ingestor make — CreateQueue, SendMessageBatch, ReceiveMessage (long polling,
 * visibility timeout, receive count), DeleteMessage(Batch), GetQueueAttributes — with O(1) work
 * per message.
 *
 * Why the bench has its own: SQS's CPU is not on the ingestor's machine, but an emulator on the
 * bench's two cores is. local-aws-sqs (what the tests run against) scans its message list on each
 * receive and splices it on each delete: 100–170 µs of CPU per message at a backlog of 5,000 and
 * ~290 µs at 100,000, more than the ingestor's own sink, so on a 2-core machine the bench measured
 * the emulator. This queue costs a few µs per message, which leaves the cores to the process
 * under test. It is a real queue (messages are held, hidden, redelivered after their visibility
 * timeout, and deleted by receipt handle), not a stub; `--sqs local-aws-sqs` runs the bench
 * against the tests' emulator instead.
 */
interface StoredMessage {
  id: string;
  body: string;
  md5: string;
  sentAt: string;
  receiveCount: number;
  /** Receipt handle of the current receive; a delete with an older one is refused, as by SQS. */
  handle: string | undefined;
  visibleAt: number;
}

interface Waiter {
  max: number;
  visibilityMs: number;
  respond: (messages: StoredMessage[]) => void;
}

class LeanQueue {
  readonly visible: StoredMessage[] = [];
  private head = 0;
  readonly inFlight = new Map<string, StoredMessage>();
  readonly waiters: Waiter[] = [];

  constructor(
    readonly name: string,
    readonly url: string,
    readonly visibilityMs: number,
  ) {}

  get depth(): number {
    return this.visible.length - this.head;
  }

  send(body: string): StoredMessage {
    const message: StoredMessage = { id: randomUUID(), body, md5: createHash('md5').update(body, 'utf8').digest('hex'), sentAt: String(Date.now()), receiveCount: 0, handle: undefined, visibleAt: 0 };
    this.visible.push(message);
    return message;
  }

  take(max: number, visibilityMs: number): StoredMessage[] {
    const taken: StoredMessage[] = [];
    const now = Date.now();
    while (taken.length < max && this.head < this.visible.length) {
      const message = this.visible[this.head] as StoredMessage;
      this.head += 1;
      message.receiveCount += 1;
      message.handle = `${message.id}.${message.receiveCount}.${randomUUID()}`;
      message.visibleAt = now + visibilityMs;
      this.inFlight.set(message.handle, message);
      taken.push(message);
    }
    // Compact the consumed prefix now and then (amortised O(1) per message).
    if (this.head > 4096 && this.head * 2 > this.visible.length) {
      this.visible.splice(0, this.head);
      this.head = 0;
    }
    return taken;
  }

  delete(handle: string): boolean {
    return this.inFlight.delete(handle);
  }

  /** Messages whose visibility timeout ran out become visible again (at the back, as SQS does not promise order). */
  expire(now: number): void {
    for (const [handle, message] of this.inFlight) {
      if (message.visibleAt > now) continue;
      this.inFlight.delete(handle);
      message.handle = undefined;
      this.visible.push(message);
    }
  }

  serveWaiters(): void {
    while (this.waiters.length > 0 && this.depth > 0) {
      const waiter = this.waiters.shift() as Waiter;
      waiter.respond(this.take(waiter.max, waiter.visibilityMs));
    }
  }
}

class SqsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LeanSqs {
  endpoint: string;
  close(): Promise<void>;
}

export async function startLeanSqs(options: { port?: number } = {}): Promise<LeanSqs> {
  const queues = new Map<string, LeanQueue>();
  let endpoint = '';
  const queueOf = (input: Record<string, unknown>): LeanQueue => {
    const url = String(input.QueueUrl ?? '');
    const queue = queues.get(url.slice(url.lastIndexOf('/') + 1));
    if (queue === undefined) throw new SqsError('com.amazonaws.sqs#QueueDoesNotExist', 'The specified queue does not exist.');
    return queue;
  };
  const entriesOf = (input: Record<string, unknown>): Record<string, string>[] => {
    const entries = input.Entries;
    if (!Array.isArray(entries) || entries.length === 0) throw new SqsError('com.amazonaws.sqs#EmptyBatchRequest', 'There should be at least one entry in the request.');
    if (entries.length > 10) throw new SqsError('com.amazonaws.sqs#TooManyEntriesInBatchRequest', `Maximum number of entries per request are 10. You have sent ${entries.length}.`);
    return entries as Record<string, string>[];
  };
  const render = (message: StoredMessage) => ({
    MessageId: message.id,
    ReceiptHandle: message.handle,
    MD5OfBody: message.md5,
    Body: message.body,
    Attributes: { SentTimestamp: message.sentAt, ApproximateReceiveCount: String(message.receiveCount) },
  });

  const actions: Record<string, (input: Record<string, unknown>) => unknown> = {
    CreateQueue: (input) => {
      const name = String(input.QueueName ?? '');
      if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) throw new SqsError('com.amazonaws.sqs#InvalidParameterValue', `invalid queue name ${name}`);
      const attributes = (input.Attributes ?? {}) as Record<string, string>;
      if (!queues.has(name)) queues.set(name, new LeanQueue(name, `${endpoint}/000000000000/${name}`, Number(attributes.VisibilityTimeout ?? 30) * 1000));
      return { QueueUrl: (queues.get(name) as LeanQueue).url };
    },
    SendMessageBatch: (input) => {
      const queue = queueOf(input);
      const successful = entriesOf(input).map((entry) => {
        const message = queue.send(String(entry.MessageBody));
        return { Id: entry.Id, MessageId: message.id, MD5OfMessageBody: message.md5 };
      });
      queue.serveWaiters();
      return { Successful: successful, Failed: [] };
    },
    DeleteMessage: (input) => {
      queueOf(input).delete(String(input.ReceiptHandle));
      return {};
    },
    DeleteMessageBatch: (input) => {
      const queue = queueOf(input);
      const successful: { Id: string }[] = [];
      const failed: { Id: string; Code: string; SenderFault: boolean; Message: string }[] = [];
      for (const entry of entriesOf(input)) {
        if (queue.delete(String(entry.ReceiptHandle))) successful.push({ Id: String(entry.Id) });
        else failed.push({ Id: String(entry.Id), Code: 'ReceiptHandleIsInvalid', SenderFault: true, Message: 'The receipt handle is not valid (anymore).' });
      }
      return { Successful: successful, Failed: failed };
    },
    GetQueueAttributes: (input) => {
      const queue = queueOf(input);
      return {
        Attributes: {
          QueueArn: `arn:aws:sqs:us-east-1:000000000000:${queue.name}`,
          ApproximateNumberOfMessages: String(queue.depth),
          ApproximateNumberOfMessagesNotVisible: String(queue.inFlight.size),
          VisibilityTimeout: String(queue.visibilityMs / 1000),
        },
      };
    },
  };

  const receive = (input: Record<string, unknown>, respond: (body: unknown) => void): void => {
    const queue = queueOf(input);
    const max = Math.min(10, Math.max(1, Number(input.MaxNumberOfMessages ?? 1)));
    const visibilityMs = input.VisibilityTimeout === undefined ? queue.visibilityMs : Number(input.VisibilityTimeout) * 1000;
    const send = (messages: StoredMessage[]) => respond(messages.length === 0 ? {} : { Messages: messages.map(render) });
    const now = queue.take(max, visibilityMs);
    const waitMs = Number(input.WaitTimeSeconds ?? 0) * 1000;
    if (now.length > 0 || waitMs <= 0) {
      send(now);
      return;
    }
    const waiter: Waiter = {
      max,
      visibilityMs,
      respond: (messages) => {
        clearTimeout(timer);
        send(messages);
      },
    };
    const timer = setTimeout(() => {
      const index = queue.waiters.indexOf(waiter);
      if (index >= 0) queue.waiters.splice(index, 1);
      send([]);
    }, waitMs);
    queue.waiters.push(waiter);
  };

  const reply = (res: ServerResponse, status: number, body: unknown, errorType?: string): void => {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(payload),
      'x-amzn-requestid': randomUUID(),
      ...(errorType === undefined ? {} : { 'x-amzn-query-error': `${errorType.split('#')[1] ?? errorType};Sender` }),
    });
    res.end(payload);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    const action = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    try {
      const input = JSON.parse(raw === '' ? '{}' : raw) as Record<string, unknown>;
      if (action === 'ReceiveMessage') {
        receive(input, (body) => reply(res, 200, body));
        return;
      }
      const run = actions[action];
      if (run === undefined) throw new SqsError('com.amazonaws.sqs#UnsupportedOperation', `${action} is not supported by the bench's lean SQS`);
      reply(res, 200, run(input));
    } catch (error) {
      const type = error instanceof SqsError ? error.type : 'com.amazon.coral.service#InternalFailure';
      reply(res, error instanceof SqsError ? 400 : 500, { __type: type, message: error instanceof Error ? error.message : String(error) }, type);
    }
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.keepAliveTimeout = 60_000;
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const queue of queues.values()) {
      queue.expire(now);
      queue.serveWaiters();
    }
  }, 250);
  sweep.unref();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  endpoint = `http://localhost:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sweep);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
