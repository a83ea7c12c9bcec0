import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type QueueAttributeName } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIngestorSqsClient } from '../../../services/ingestor/sqs-client.js';
import { startSqsHarness, uniqueName, type SqsHarness } from '../../support/ingestor-harness.js';

let sqs: SqsHarness;
beforeAll(async () => {
  sqs = await startSqsHarness();
}, 60_000);
afterAll(async () => {
  await sqs?.close();
});

describe('the ingestor SQS client', () => {
  it('has no SDK logger step (it copied and masked every body for a no-op) where a default client has one', () => {
    const client = createIngestorSqsClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, maxPollers: 4, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const plain = new SQSClient({ region: 'us-east-1' });
    try {
      expect(plain.middlewareStack.identify().some((step) => step.startsWith('loggerMiddleware'))).toBe(true);
      expect(client.middlewareStack.identify().some((step) => step.startsWith('loggerMiddleware'))).toBe(false);
    } finally {
      client.destroy();
      plain.destroy();
    }
  });

  // The emulator reads the legacy AttributeNames, SQS the newer MessageSystemAttributeNames: the poller sends both.
  it('still receives with attributes, verifies bodies and deletes in batches against the SQS server', async () => {
    const queueUrl = await sqs.createQueue(uniqueName('client'));
    await sqs.send(queueUrl, ['{"a":1}', '{"b":2}', '{"c":3}']);
    const client = createIngestorSqsClient({ region: 'us-east-1', endpoint: sqs.server.endpoint, maxPollers: 4, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    try {
      const received = [];
      while (received.length < 3) {
        const out = await client.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'], AttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'] as unknown as QueueAttributeName[] }));
        received.push(...(out.Messages ?? []));
      }
      expect(received.map((message) => message.Body).sort()).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
      expect(received.every((message) => message.Attributes?.ApproximateReceiveCount === '1')).toBe(true);
      const deleted = await client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: received.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })) }));
      expect(deleted.Successful).toHaveLength(3);
    } finally {
      client.destroy();
    }
  });
});
