import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException, type ObjectLockMode } from '@aws-sdk/client-s3';
import type { FastifyBaseLogger } from 'fastify';
import { recordLine, recordOrigin, type CheckpointRecord } from '../../../../lib/audit/checkpoint-record.js';
import { ExportFormatError, parseExportLine } from '../../../../lib/audit/export-format.js';
import { TokenvaultError } from '../../../../lib/errors.js';

/** Somewhere outside PostgreSQL that checkpoint records are published to, in index order. */
export interface CheckpointSink {
  readonly name: string;
  /** Publishes one record; publishing a record the sink already holds is harmless (idempotent). */
  publish(record: CheckpointRecord): Promise<void>;
  /**
   * The newest record the sink holds, read back (undefined: none yet). Absent on sinks that cannot
   * be read (a log stream). `hint`: an index the caller believes is published (a place to start looking).
   */
  latest?(hint?: number): Promise<CheckpointRecord | undefined>;
  close?(): void;
}

/**
 * A sink holds a different record under an index it is asked to publish: someone else writes
 * there (a second deployment with the same origin and prefix), or it was rewritten. Never resolved
 * by overwriting; it is an alarm.
 */
export class SinkConflictError extends TokenvaultError {
  constructor(sink: string, index: number, detail: string) {
    super('sink_conflict', `the ${sink} sink already holds a different checkpoint ${index} (${detail}); it is never overwritten`, { transient: false });
  }
}

/** How much of the file's end is read to find its last line (a record is a few KiB at most). */
const TAIL_BYTES = 64 * 1024;

/**
 * Appends one JSON line per checkpoint record to a file (the `npm start` default) and fsyncs it.
 * Its value against the database owner is that it lives elsewhere: ship it (or point it at a
 * mount) where that person cannot rewrite it. One process writes a given file.
 */
export class FileCheckpointSink implements CheckpointSink {
  readonly name = 'file';
  constructor(private readonly file: string) {}

  async publish(record: CheckpointRecord): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tail = await this.readTail();
    // Published already (a catch-up after a restart, a retry after a lost fsync acknowledgement).
    if (tail.last !== undefined && tail.last.index >= record.index) return;
    const handle = await open(this.file, 'a', 0o644);
    try {
      // A line torn by a crash mid-write stays on its own line; the next record starts a new one.
      await handle.appendFile(`${tail.endsInNewline ? '' : '\n'}${recordLine(record)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async latest(): Promise<CheckpointRecord | undefined> {
    return (await this.readTail()).last;
  }

  /** The last complete, parseable record line of the file (a torn or foreign last line is skipped). */
  private async readTail(): Promise<{ last: CheckpointRecord | undefined; endsInNewline: boolean }> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { last: undefined, endsInNewline: true };
      throw error;
    }
    try {
      const { size } = await handle.stat();
      if (size === 0) return { last: undefined, endsInNewline: true };
      const length = Math.min(size, TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const text = buffer.toString('utf8');
      const lines = text.split('\n');
      // The first piece may be the middle of a line when the file is longer than the tail read.
      const candidates = (size > length ? lines.slice(1) : lines).filter((line) => line.trim() !== '');
      for (let i = candidates.length - 1; i >= 0; i -= 1) {
        try {
          const parsed = parseExportLine(candidates[i]!, 0);
          if (parsed.type === 'checkpoint') return { last: parsed.record, endsInNewline: text.endsWith('\n') };
        } catch (error) {
          if (!(error instanceof ExportFormatError)) throw error;
        }
      }
      return { last: undefined, endsInNewline: text.endsWith('\n') };
    } finally {
      await handle.close();
    }
  }
}

/** One structured log line per checkpoint: what log shippers and SIEMs collect. It cannot be read back. */
export class LogCheckpointSink implements CheckpointSink {
  readonly name = 'log';
  constructor(private readonly logger: FastifyBaseLogger) {}

  async publish(record: CheckpointRecord): Promise<void> {
    this.logger.info({ auditCheckpoint: JSON.parse(recordLine(record)) as unknown }, 'audit checkpoint');
  }
}

export interface S3SinkOptions {
  bucket: string;
  prefix: string;
  /** The log's origin: objects live under `<prefix><origin>/`. */
  origin: string;
  region: string;
  endpoint: string | undefined;
  /** Path-style URLs (emulators, some S3-compatible stores). */
  forcePathStyle: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Object Lock retention per object: WORM storage the database owner cannot rewrite. */
  objectLock: { mode: ObjectLockMode; days: number } | undefined;
  now?: () => number;
}

const INDEX_DIGITS = 12;

/**
 * One object per checkpoint record: `<prefix><origin>/<index, 12 digits>.json`, the line as its
 * body. Written with a conditional put (`If-None-Match: *`, S3 conditional writes): an existing
 * object is never overwritten. When the object exists already, its body is compared: the same
 * record is a repeat (a retry, a catch-up) and succeeds; another record is a SinkConflictError.
 */
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

  static objectKey(prefix: string, origin: string, index: number): string {
    return `${prefix}${origin}/${String(index).padStart(INDEX_DIGITS, '0')}.json`;
  }

  private get folder(): string {
    return `${this.options.prefix}${this.options.origin}/`;
  }

  async publish(record: CheckpointRecord): Promise<void> {
    const origin = recordOrigin(record);
    if (origin !== undefined && origin !== this.options.origin) throw new Error(`checkpoint ${record.index} is of log ${origin}, this sink publishes ${this.options.origin}`);
    const lock = this.options.objectLock;
    const now = this.options.now?.() ?? Date.now();
    const key = S3CheckpointSink.objectKey(this.options.prefix, this.options.origin, record.index);
    const body = `${recordLine(record)}\n`;
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          IfNoneMatch: '*',
          ...(lock === undefined ? {} : { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: new Date(now + lock.days * 86_400_000) }),
        }),
      );
    } catch (error) {
      if (!(error instanceof S3ServiceException) || error.$metadata.httpStatusCode !== 412) throw error;
      const existing = await this.read(key);
      if (existing !== body) throw new SinkConflictError('s3', record.index, `s3://${this.options.bucket}/${key}`);
    }
  }

  async latest(hint?: number): Promise<CheckpointRecord | undefined> {
    const startAfter = hint !== undefined && hint > 1 ? S3CheckpointSink.objectKey(this.options.prefix, this.options.origin, hint - 1) : undefined;
    let key = await this.lastKey(startAfter);
    // Nothing at or after the hint: the sink is further behind than believed; look from the start.
    if (key === undefined && startAfter !== undefined) key = await this.lastKey(undefined);
    if (key === undefined) return undefined;
    const text = await this.read(key);
    if (text === undefined) return undefined;
    const parsed = parseExportLine(text.trim(), 1);
    return parsed.type === 'checkpoint' ? parsed.record : undefined;
  }

  /** The largest checkpoint object key (keys sort by index: fixed-width digits). */
  private async lastKey(startAfter: string | undefined): Promise<string | undefined> {
    let last: string | undefined;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.options.bucket,
          Prefix: this.folder,
          ...(token === undefined && startAfter !== undefined ? { StartAfter: startAfter } : {}),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const object of page.Contents ?? []) {
        const name = object.Key?.slice(this.folder.length) ?? '';
        if (new RegExp(`^[0-9]{${INDEX_DIGITS}}\\.json$`).test(name) && (last === undefined || object.Key! > last)) last = object.Key;
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return last;
  }

  private async read(key: string): Promise<string | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return (await object.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      if (error instanceof S3ServiceException && error.$metadata.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  close(): void {
    this.client.destroy();
  }
}
