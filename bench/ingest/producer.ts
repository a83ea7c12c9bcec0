import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { syntheticBodies, type SyntheticOptions } from './messages.js';

/**
 * The producers, in their own process (as in production, their CPU is not the ingestor's): send
 * the bench's synthetic messages to the queue, keeping at most `backlog` messages on it (visible
 * or in flight), so the queue holds a standing backlog like a busy production queue instead of
 * the whole run at once (the emulator's receive costs grow with its depth; SQS's do not).
 * Prints `ready` once the first backlog is on the queue and `done <CPU seconds used>` once
 * everything was sent.
 * Arguments: one JSON object (endpoint, queueUrl, backlog, and the SyntheticOptions).
 */
interface ProducerOptions extends SyntheticOptions {
  endpoint: string;
  queueUrl: string;
  backlog: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as ProducerOptions;
const bodies = syntheticBodies(options);
// cacheMiddleware: the SDK resolves each command's middleware once (its CPU per call is most of ours).
const sqs = new SQSClient({ region: 'us-east-1', endpoint: options.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, cacheMiddleware: true });
const CONCURRENCY = 8;
let next = 0;

async function depth(): Promise<number> {
  // This emulator counts visible and in-flight messages here (SQS counts only the visible ones).
  const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: options.queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** Sends up to `count` more messages, CONCURRENCY batches of 10 at a time. */
async function send(count: number): Promise<void> {
  const end = Math.min(bodies.length, next + count);
  const worker = async (): Promise<void> => {
    while (next < end) {
      const chunk = bodies.slice(next, Math.min(next + 10, end));
      next += chunk.length;
      const out = await sqs.send(
        new SendMessageBatchCommand({ QueueUrl: options.queueUrl, Entries: chunk.map((MessageBody, index) => ({ Id: String(index), MessageBody })) }),
      );
      if ((out.Failed?.length ?? 0) > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed?.[0])}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

await send(options.backlog);
process.stdout.write('ready\n');
while (next < bodies.length) {
  const room = options.backlog - (await depth());
  if (room >= Math.min(500, options.backlog / 4)) await send(room);
  else await new Promise((resolve) => setTimeout(resolve, 5));
}
// The CPU this process used, for the bench's table (it is not the ingestor's).
const cpu = process.cpuUsage();
process.stdout.write(`done ${(cpu.user + cpu.system) / 1e6}\n`);
sqs.destroy();
