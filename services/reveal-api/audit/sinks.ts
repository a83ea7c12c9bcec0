import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PutObjectCommand, S3Client, type ObjectLockMode } from '@aws-sdk/client-s3';
import type { FastifyBaseLogger } from 'fastify';
import { checkpointLine, type SignedCheckpoint } from '../../../lib/audit/checkpoint.js';

/** Somewhere outside PostgreSQL that a checkpoint is published to. */
export interface CheckpointSink {
  readonly name: string;
  publish(checkpoint: SignedCheckpoint): Promise<void>;
  close?(): void;
}

/**
 * Appends one JSON line per checkpoint to a file (the `npm start` default) and fsyncs it.
 * Its value against the database owner is that it lives elsewhere: ship it (or point it at a
 * mount) where that person cannot rewrite it.
 */
export class FileCheckpointSink implements CheckpointSink {
  readonly name = 'file';
  constructor(private readonly file: string) {}

  async publish(checkpoint: SignedCheckpoint): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const handle = await open(this.file, 'a', 0o644);
    try {
      await handle.appendFile(`${checkpointLine(checkpoint)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

/** One structured log line per checkpoint: what log shippers and SIEMs collect. */
export class LogCheckpointSink implements CheckpointSink {
  readonly name = 'log';
  constructor(private readonly logger: FastifyBaseLogger) {}

  async publish(checkpoint: SignedCheckpoint): Promise<void> {
    this.logger.info({ auditCheckpoint: JSON.parse(checkpointLine(checkpoint)) as unknown }, 'audit checkpoint');
  }
}

export interface S3SinkOptions {
  bucket: string;
  prefix: string;
  region: string;
  endpoint: string | undefined;
  /** Path-style URLs (emulators, some S3-compatible stores). */
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Object Lock retention per object: WORM storage the database owner cannot rewrite. */
  objectLock: { mode: ObjectLockMode; days: number } | undefined;
  now?: () => number;
}

/** One object per checkpoint: `<prefix><origin>/<index, 12 digits>.json`, the line as its body. */
export class S3CheckpointSink implements CheckpointSink {
  readonly name = 's3';
  private readonly client: S3Client;

  constructor(private readonly options: S3SinkOptions) {
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      forcePathStyle: options.forcePathStyle,
      maxAttempts: 3,
    });
  }

  static objectKey(prefix: string, checkpoint: SignedCheckpoint): string {
    return `${prefix}${checkpoint.body.origin}/${String(checkpoint.body.index).padStart(12, '0')}.json`;
  }

  async publish(checkpoint: SignedCheckpoint): Promise<void> {
    const lock = this.options.objectLock;
    const now = this.options.now?.() ?? Date.now();
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: S3CheckpointSink.objectKey(this.options.prefix, checkpoint),
        Body: `${checkpointLine(checkpoint)}\n`,
        ContentType: 'application/json',
        ...(lock === undefined ? {} : { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: new Date(now + lock.days * 86_400_000) }),
      }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}
