import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noteCheckpointLine, type NoteCheckpointRecord } from '../../../../../lib/audit/checkpoint-record.js';
import { parseExportLine } from '../../../../../lib/audit/export-format.js';
import { openCheckpoint } from '../../../../../lib/audit/note/tlog-checkpoint.js';
import { parseVerifierKey } from '../../../../../lib/audit/note/vkey.js';
import { FileCheckpointSink, S3CheckpointSink, SinkConflictError, type S3SinkOptions } from '../../../../../services/reveal-api/audit/checkpoints/sinks.js';
import { noteRecord, testLogKeys } from '../../../../support/note-checkpoints.js';
import { startTestS3, type TestS3 } from '../../../../support/s3-server.js';

const keys = testLogKeys('test/audit');
const verifiers = keys.signers.map((signer) => parseVerifierKey(signer.verifierKey));

let s3: TestS3;
let plainS3: TestS3;
let dir: string;
let client: S3Client;
beforeAll(async () => {
  s3 = await startTestS3(['audit-bucket']);
  plainS3 = await startTestS3(['audit-bucket'], { conditionalWrites: false });
  dir = await mkdtemp(join(tmpdir(), 'tokenvault-sink-'));
  client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials });
});
afterAll(async () => {
  client?.destroy();
  await s3?.close();
  await plainS3?.close();
  await rm(dir, { recursive: true, force: true });
});

function s3Sink(prefix: string, extra: Partial<S3SinkOptions> = {}): S3CheckpointSink {
  return new S3CheckpointSink({
    bucket: 'audit-bucket',
    prefix,
    origin: 'test/audit',
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: s3.credentials,
    objectLock: undefined,
    ...extra,
  });
}

async function objectBody(key: string): Promise<string> {
  const object = await client.send(new GetObjectCommand({ Bucket: 'audit-bucket', Key: key }));
  return object.Body!.transformToString();
}

describe('file checkpoint sink', () => {
  it('appends one verifiable line per record, creating its directory, and reads the last one back', async () => {
    const file = join(dir, 'nested', 'checkpoints.jsonl');
    const sink = new FileCheckpointSink(file);
    expect(await sink.latest()).toBeUndefined();
    const first = await noteRecord(keys, 1, 3);
    const second = await noteRecord(keys, 2, 5, { fromSize: 3 });
    await sink.publish(first);
    await sink.publish(second);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toEqual([noteCheckpointLine(first), noteCheckpointLine(second)]);
    const parsed = lines.map((line, index) => parseExportLine(line, index + 1));
    for (const line of parsed) {
      expect(line.type).toBe('checkpoint');
      if (line.type === 'checkpoint' && line.record.kind === 'note') expect(openCheckpoint(line.record.note, verifiers).verified).toHaveLength(2);
    }
    expect(await sink.latest()).toEqual(second);
  });

  it('publishing a record the file already holds changes nothing (catch-up after a restart)', async () => {
    const file = join(dir, 'repeat.jsonl');
    const sink = new FileCheckpointSink(file);
    const records = [await noteRecord(keys, 1, 2), await noteRecord(keys, 2, 4, { fromSize: 2 })];
    for (const record of records) await sink.publish(record);
    for (const record of records) await sink.publish(record);
    expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(2);
  });

  it('skips a torn last line when reading back, and starts the next record on a line of its own', async () => {
    const file = join(dir, 'torn.jsonl');
    const sink = new FileCheckpointSink(file);
    const first = await noteRecord(keys, 1, 2);
    await sink.publish(first);
    // A crash in the middle of the next write.
    await appendFile(file, noteCheckpointLine(await noteRecord(keys, 2, 3)).slice(0, 40));
    expect(await sink.latest()).toEqual(first);
    const second = await noteRecord(keys, 2, 3, { fromSize: 2 });
    await sink.publish(second);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe(noteCheckpointLine(second));
    expect(await sink.latest()).toEqual(second);
  });
});

describe('S3 checkpoint sink', () => {
  it('writes one object per record through the real S3 client and reads the newest back', async () => {
    const sink = s3Sink('checkpoints/');
    try {
      expect(await sink.latest()).toBeUndefined();
      const records: NoteCheckpointRecord[] = [];
      for (let index = 1; index <= 3; index += 1) records.push(await noteRecord(keys, index, index * 2, index === 1 ? {} : { fromSize: (index - 1) * 2 }));
      for (const record of records) await sink.publish(record);
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'audit-bucket', Prefix: 'checkpoints/' }));
      expect(listed.Contents?.map((object) => object.Key)).toEqual([1, 2, 3].map((index) => `checkpoints/test/audit/00000000000${index}.json`));
      expect(await objectBody('checkpoints/test/audit/000000000002.json')).toBe(`${noteCheckpointLine(records[1]!)}\n`);
      expect(await sink.latest()).toEqual(records[2]);
      // A hint past the newest object falls back to a full listing.
      expect(await sink.latest(9)).toEqual(records[2]);
      expect(await sink.latest(2)).toEqual(records[2]);
    } finally {
      sink.close();
    }
  });

  it('never overwrites: the same record again succeeds, a different record under its index is a conflict and the object stays', async () => {
    const sink = s3Sink('no-overwrite/');
    try {
      const original = await noteRecord(keys, 1, 4);
      await sink.publish(original);
      await sink.publish(original);
      const other = await noteRecord(keys, 1, 5);
      await expect(sink.publish(other)).rejects.toBeInstanceOf(SinkConflictError);
      expect(await objectBody('no-overwrite/test/audit/000000000001.json')).toBe(`${noteCheckpointLine(original)}\n`);
    } finally {
      sink.close();
    }
  });

  it('plain s3rver ignores If-None-Match on PutObject (why the test server adds S3\'s conditional writes)', async () => {
    const plain = new S3Client({ region: 'us-east-1', endpoint: plainS3.endpoint, forcePathStyle: true, credentials: plainS3.credentials });
    try {
      const put = (body: string) => plain.send(new PutObjectCommand({ Bucket: 'audit-bucket', Key: 'k.json', Body: body, IfNoneMatch: '*' }));
      await put('first');
      await put('second');
      const object = await plain.send(new GetObjectCommand({ Bucket: 'audit-bucket', Key: 'k.json' }));
      expect(await object.Body!.transformToString()).toBe('second');
    } finally {
      plain.destroy();
    }
  });

  it('sends If-None-Match: * and, when configured, Object Lock retention headers', async () => {
    const seen: Record<string, string | undefined>[] = [];
    const sink = s3Sink('locked/', { objectLock: { mode: 'COMPLIANCE', days: 400 }, now: () => Date.parse('2026-01-01T00:00:00Z') });
    // Observe the wire request (s3rver stores the object but does not implement Object Lock).
    (sink as unknown as { client: S3Client }).client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers: Record<string, string> }).headers;
        if (headers['if-none-match'] !== undefined) seen.push({ ifNoneMatch: headers['if-none-match'], mode: headers['x-amz-object-lock-mode'], until: headers['x-amz-object-lock-retain-until-date'] });
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    await sink.publish(await noteRecord(keys, 1, 1));
    sink.close();
    // 400 days after 2026-01-01.
    expect(seen).toEqual([{ ifNoneMatch: '*', mode: 'COMPLIANCE', until: expect.stringMatching(/^2027-02-05T00:00:00(\.000)?Z$/) }]);
  });

  it('fails when it cannot reach its bucket (the publisher retries it)', async () => {
    const sink = s3Sink('', { bucket: 'no-such-bucket' });
    await expect(sink.publish(await noteRecord(keys, 1, 1))).rejects.toThrow();
    sink.close();
  });
});
