import { readFile } from 'node:fs/promises';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

export const QUEUE_NAME = 'login-queue';
export const DEAD_LETTER_QUEUE_NAME = 'login-queue-dlq';
/** After this many receives without a delete (crash loops, a poison message), SQS moves a message to the DLQ. */
export const MAX_RECEIVE_COUNT = 5;

/** Creates the dead-letter queue, then the login queue with a redrive policy to it. Idempotent. */
export async function createLoginQueues(sqs: SQSClient): Promise<{ queueUrl: string; deadLetterQueueUrl: string }> {
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: DEAD_LETTER_QUEUE_NAME, Attributes: { MessageRetentionPeriod: '1209600' } }));
  const dlqAttributes = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }));
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: QUEUE_NAME,
      Attributes: {
        VisibilityTimeout: '30',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttributes.Attributes?.QueueArn, maxReceiveCount: String(MAX_RECEIVE_COUNT) }),
      },
    }),
  );
  if (queue.QueueUrl === undefined || dlq.QueueUrl === undefined) throw new Error('CreateQueue returned no queue URL');
  return { queueUrl: queue.QueueUrl, deadLetterQueueUrl: dlq.QueueUrl };
}

/** Sends each line of a JSONL file as one message body, byte for byte (so MD5OfBody matches the reference). */
export async function sendJsonlFile(sqs: SQSClient, queueUrl: string, file: string): Promise<number> {
  return sendLines(sqs, queueUrl, (await readFile(file, 'utf8')).split('\n').filter((line) => line.length > 0));
}

/** Sends each line as one message body, byte for byte, in batches of 10. */
export async function sendLines(sqs: SQSClient, queueUrl: string, lines: string[]): Promise<number> {
  for (let start = 0; start < lines.length; start += 10) {
    const entries = lines.slice(start, start + 10).map((body, index) => ({ Id: String(start + index), MessageBody: body }));
    const result = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    if ((result.Failed ?? []).length > 0) throw new Error(`SendMessageBatch failed for ${result.Failed?.length} messages`);
  }
  return lines.length;
}

export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<{ visible: number; inFlight: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}
