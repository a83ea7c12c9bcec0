import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type QueueAttributeName,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Database } from '../../db/client.js';
import { seal } from '../../lib/crypto/aead.js';
import type { Tokenizer } from '../../lib/crypto/tokens.js';
import { vaultAad } from '../../lib/crypto/vault-context.js';
import type { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { parseLoginEvent } from '../../services/ingestor/index.js';

const ATTRIBUTES = ['SentTimestamp', 'ApproximateReceiveCount'] as unknown as QueueAttributeName[];

/** Puts the bodies on the queue, 10 per SendMessageBatch, `concurrency` requests at a time. */
export async function fillQueue(sqs: SQSClient, queueUrl: string, bodies: string[], concurrency = 16): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const start = next;
      next += 10;
      if (start >= bodies.length) return;
      const chunk = bodies.slice(start, start + 10);
      const out = await sqs.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: chunk.map((MessageBody, index) => ({ Id: String(index), MessageBody })) }),
      );
      if ((out.Failed?.length ?? 0) > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed?.[0])}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * (e) The naive consumer: one message per receive, per-value encryption, one transaction
 * per message, one DeleteMessage per message. Correct (idempotent), just slow.
 */
export async function naiveConsumer(deps: {
  sqs: SQSClient;
  queueUrl: string;
  total: number;
  database: Database;
  dataKeys: DataKeyRing;
  tokenizer: Tokenizer;
}): Promise<number> {
  const { sqs, queueUrl, database, dataKeys, tokenizer } = deps;
  let handled = 0;
  const started = performance.now();
  while (handled < deps.total) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1, AttributeNames: ATTRIBUTES }));
    const message = out.Messages?.[0];
    if (message?.MessageId === undefined || message.ReceiptHandle === undefined) continue;
    const parsed = parseLoginEvent(message.Body ?? '');
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      if (parsed.ok) {
        const event = parsed.event;
        const ipToken = tokenizer.tokenizeCanonical('ip', event.ip);
        const deviceIdToken = tokenizer.tokenizeCanonical('device_id', event.deviceId);
        for (const [field, token, value] of [
          ['ip', ipToken, event.ip],
          ['device_id', deviceIdToken, event.deviceId],
        ] as const) {
          const key = await dataKeys.acquire(1);
          await client.query(
            `INSERT INTO pii_vault (token, field, ciphertext, data_key_id, token_key_version) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
            [token, field, seal(key.key, Buffer.from(value), vaultAad(token)), key.id, tokenizer.keyVersion],
          );
        }
        await client.query(
          `INSERT INTO user_logins (message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                                    create_date, sent_at, token_key_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8) ON CONFLICT DO NOTHING`,
          [message.MessageId, event.userId, event.deviceType, ipToken, deviceIdToken, event.locale, event.appVersion, tokenizer.keyVersion],
        );
      }
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
    handled += 1;
  }
  return (performance.now() - started) / 1000;
}
