import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FORMAT, checkpointBytes, keyIdOf, parseCheckpoint, verifyCheckpointSignature, type SignedCheckpoint } from '../../../../lib/audit/checkpoint.js';
import { LocalAuditSigner } from '../../../../lib/keys/local-audit-signer.js';
import { FileCheckpointSink, S3CheckpointSink } from '../../../../services/reveal-api/audit/sinks.js';
import { startTestS3, type TestS3 } from '../../../support/s3-server.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const signer = LocalAuditSigner.fromKey(privateKey);

async function checkpoint(index: number): Promise<SignedCheckpoint> {
  const body = {
    format: CHECKPOINT_FORMAT,
    origin: 'test/audit',
    index,
    seq: index * 10,
    head_hash: 'ab'.repeat(32),
    row_count: index * 10,
    time: new Date(0).toISOString(),
    prev_digest: null,
    key_id: keyIdOf(publicKey),
    signer: signer.label,
  } as const;
  return { body, signature: await signer.sign(checkpointBytes(body)) };
}

let s3: TestS3;
let dir: string;
beforeAll(async () => {
  s3 = await startTestS3(['audit-bucket']);
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-sink-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoint sinks', () => {
  it('the file sink appends one verifiable JSON line per checkpoint, creating its directory', async () => {
    const file = join(dir, 'nested', 'checkpoints.jsonl');
    const sink = new FileCheckpointSink(file);
    await sink.publish(await checkpoint(1));
    await sink.publish(await checkpoint(2));
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const parsed = lines.map((line) => parseCheckpoint(JSON.parse(line)));
    expect(parsed.map((item) => item.body.index)).toEqual([1, 2]);
    expect(parsed.every((item) => verifyCheckpointSignature(item, publicKey))).toBe(true);
  });

  it('the S3 sink writes one object per checkpoint through the real S3 client', async () => {
    const sink = new S3CheckpointSink({
      bucket: 'audit-bucket',
      prefix: 'checkpoints/',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
      objectLock: undefined,
    });
    await sink.publish(await checkpoint(1));
    await sink.publish(await checkpoint(2));
    const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials });
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'audit-bucket', Prefix: 'checkpoints/' }));
      expect(listed.Contents?.map((object) => object.Key)).toEqual(['checkpoints/test/audit/000000000001.json', 'checkpoints/test/audit/000000000002.json']);
      const object = await client.send(new GetObjectCommand({ Bucket: 'audit-bucket', Key: 'checkpoints/test/audit/000000000002.json' }));
      const restored = parseCheckpoint(JSON.parse(await object.Body!.transformToString()));
      expect(restored.body.index).toBe(2);
      expect(verifyCheckpointSignature(restored, publicKey)).toBe(true);
    } finally {
      client.destroy();
      sink.close();
    }
  });

  it('sends Object Lock retention headers when configured', async () => {
    const seen: Record<string, string | undefined>[] = [];
    const sink = new S3CheckpointSink({
      bucket: 'audit-bucket',
      prefix: 'locked/',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
      objectLock: { mode: 'COMPLIANCE', days: 400 },
      now: () => Date.parse('2026-01-01T00:00:00Z'),
    });
    // Observe the wire request (s3rver stores the object but does not implement Object Lock).
    (sink as unknown as { client: S3Client }).client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        seen.push({ mode: headers['x-amz-object-lock-mode'], until: headers['x-amz-object-lock-retain-until-date'] });
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    await sink.publish(await checkpoint(1));
    sink.close();
    // 400 days after 2026-01-01.
    expect(seen).toEqual([{ mode: 'COMPLIANCE', until: expect.stringMatching(/^2027-02-05T00:00:00(\.000)?Z$/) }]);
  });

  it('a sink that cannot reach S3 fails (the publisher retries it)', async () => {
    const sink = new S3CheckpointSink({
      bucket: 'no-such-bucket',
      prefix: '',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: s3.credentials,
      objectLock: undefined,
    });
    await expect(sink.publish(await checkpoint(1))).rejects.toThrow();
    sink.close();
  });
});
