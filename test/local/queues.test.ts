import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedSqs, type RunningSqs } from '../../local/embedded-sqs.js';
import { createLoginQueues, MAX_RECEIVE_COUNT, sendJsonlFile } from '../../local/queues.js';

const REFERENCE = fileURLToPath(new URL('../../data/login-queue.sample.jsonl', import.meta.url));
let server: RunningSqs;
let sqs: SQSClient;

beforeAll(async () => {
  server = await startEmbeddedSqs({ port: 0 });
  sqs = new SQSClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});
afterAll(async () => {
  sqs?.destroy();
  await server?.close();
});

describe('local queues', () => {
  it('creates login-queue with a redrive policy to its dead-letter queue, idempotently', async () => {
    const first = await createLoginQueues(sqs);
    const again = await createLoginQueues(sqs);
    expect(again).toEqual(first);
    expect(first.queueUrl).toBe(server.queueUrl('login-queue'));
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: first.queueUrl, AttributeNames: ['RedrivePolicy'] }));
    expect(JSON.parse(attributes.Attributes?.RedrivePolicy ?? '{}')).toMatchObject({
      deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:login-queue-dlq',
      maxReceiveCount: String(MAX_RECEIVE_COUNT),
    });
  });

  it('loads the 100 reference bodies byte for byte (MD5OfBody equals the MD5 of each line)', async () => {
    const { queueUrl } = await createLoginQueues(sqs);
    expect(await sendJsonlFile(sqs, queueUrl, REFERENCE)).toBe(100);
    const expected = new Set((await readFile(REFERENCE, 'utf8')).split('\n').filter(Boolean).map((line) => createHash('md5').update(line).digest('hex')));
    const seen = new Set<string>();
    while (seen.size < 100) {
      // A short poll may answer empty while messages remain (SQS samples); a long poll does not.
      const batch = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
      if ((batch.Messages ?? []).length === 0) break;
      for (const message of batch.Messages ?? []) {
        expect(createHash('md5').update(message.Body ?? '').digest('hex')).toBe(message.MD5OfBody);
        seen.add(message.MD5OfBody ?? '');
      }
    }
    expect(seen).toEqual(expected);
  });
});
