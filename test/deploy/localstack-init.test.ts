import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = `${ROOT}data/login-queue.sample.jsonl`;
const out = mkdtempSync(join(tmpdir(), 'tokenvault-batches-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('deploy/localstack/sqs-batches.sh (what the compose init job sends)', () => {
  it('turns every line of the reference file into one message body, byte for byte, with its expected MD5', () => {
    const queueUrl = 'http://localstack:4566/000000000000/login-queue';
    const run = spawnSync('bash', [`${ROOT}deploy/localstack/sqs-batches.sh`, SAMPLE, queueUrl, out], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('100');

    const lines = readFileSync(SAMPLE, 'utf8').split('\n').filter((line) => line.length > 0);
    const files = readdirSync(out).sort();
    const batches = files.filter((file) => file.endsWith('.json'));
    expect(batches).toHaveLength(10);
    const entries = batches.flatMap((file) => {
      const batch = JSON.parse(readFileSync(join(out, file), 'utf8')) as { QueueUrl: string; Entries: { Id: string; MessageBody: string }[] };
      expect(batch.QueueUrl).toBe(queueUrl);
      expect(batch.Entries.length).toBeLessThanOrEqual(10);
      return batch.Entries;
    });
    expect(entries.map((entry) => entry.MessageBody)).toEqual(lines);
    // Line 13 (the malformed one) goes out untouched too: the ingestor must see it as it is.
    expect(entries[12]?.MessageBody).toBe('{"foo": "oops_wrong_msg_type", "bar": "123"}');

    const expectedMd5 = new Map(
      files
        .filter((file) => file.endsWith('.md5'))
        .flatMap((file) => readFileSync(join(out, file), 'utf8').trim().split('\n'))
        .map((line) => line.split(' ') as [string, string]),
    );
    for (const entry of entries) {
      expect(expectedMd5.get(entry.Id)).toBe(createHash('md5').update(entry.MessageBody, 'utf8').digest('hex'));
    }
  });
});
