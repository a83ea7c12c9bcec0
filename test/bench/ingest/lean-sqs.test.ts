import type { SQSClient } from '@aws-sdk/client-sqs';
import { CreateQueueCommand, DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeanSqs, type LeanSqs } from '../../../bench/ingest/lean-sqs.js';
import { createIngestorSqsClient } from '../../../services/ingestor/index.js';

/**
 * bench:ingest's lean queue must behave as a queue for the real SDK, or the bench's figures would
 * be a stub's: bodies come back intact (the SDK checks their MD5), a message is hidden while in
 * flight and redelivered with a higher receive count after its visibility timeout, a delete
 * needs the current receipt handle, and long polls are answered when messages arrive.
 */
let server: LeanSqs;
let sqs: SQSClient;
beforeAll(async () => {
  server = await startLeanSqs();
  sqs = createIngestorSqsClient({ region: 'us-east-1', endpoint: server.endpoint, maxPollers: 4, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
});
afterAll(async () => {
  sqs?.destroy();
  await server?.close();
});

async function queue(name: string, visibilityTimeout: number): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: String(visibilityTimeout) } }));
  return out.QueueUrl as string;
}

async function send(queueUrl: string, bodies: string[]): Promise<void> {
  const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.map((MessageBody, index) => ({ Id: String(index), MessageBody })) }));
  expect(out.Successful).toHaveLength(bodies.length);
}

function receive(queueUrl: string, waitTimeSeconds = 0) {
  return sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitTimeSeconds, MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'] }));
}

describe("bench:ingest's lean SQS queue", () => {
  it('hands each message to one receiver, redelivers it after the visibility timeout, and deletes it only with the current receipt handle', async () => {
    const url = await queue('redelivery', 1);
    await send(url, ['{"n":1}', '{"n":2}', 'é ✓ unicode']);
    const first = (await receive(url)).Messages ?? [];
    expect(first.map((message) => message.Body).sort()).toEqual(['{"n":1}', '{"n":2}', 'é ✓ unicode']);
    expect(first.every((message) => message.Attributes?.ApproximateReceiveCount === '1' && Number(message.Attributes.SentTimestamp) > 0)).toBe(true);
    expect((await receive(url)).Messages).toBeUndefined();

    let again: typeof first = [];
    while (again.length < 3) again = again.concat((await receive(url, 1)).Messages ?? []);
    expect(again.every((message) => message.Attributes?.ApproximateReceiveCount === '2')).toBe(true);

    const stale = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: first.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })) }));
    expect(stale.Failed).toHaveLength(3);
    const current = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: again.map((message, index) => ({ Id: String(index), ReceiptHandle: message.ReceiptHandle })) }));
    expect(current.Successful).toHaveLength(3);
    const attributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    expect(attributes.Attributes).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });

  it('answers a waiting long poll when a message arrives, and an empty one when none does', async () => {
    const url = await queue('long-poll', 30);
    const empty = await receive(url, 1);
    expect(empty.Messages).toBeUndefined();
    const waiting = receive(url, 5);
    await send(url, ['late']);
    expect((await waiting).Messages?.map((message) => message.Body)).toEqual(['late']);
  });

  it('refuses an unknown queue with the error SQS gives', async () => {
    await expect(receive(`${server.endpoint}/000000000000/missing`)).rejects.toMatchObject({ name: 'QueueDoesNotExist' });
  });
});
