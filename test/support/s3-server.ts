import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';

export interface TestS3 {
  endpoint: string;
  /** s3rver checks request signatures against these. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
}

export interface TestS3Options {
  /**
   * Honour `If-None-Match: *` on PutObject as AWS S3 does since 2024 (conditional writes: 412
   * PreconditionFailed when the key exists). s3rver 3.7 ignores the header and overwrites (checked
   * by test/services/reveal-api/audit/checkpoints/sinks.test.ts), so this adds it in front of s3rver, with the
   * existence check and the write of one key serialised as S3 makes them atomic. Default true.
   */
  conditionalWrites?: boolean;
}

/** An S3-protocol server (s3rver) on loopback, a free port, its own directory, with the given buckets. */
export async function startTestS3(buckets: string[], options: TestS3Options = {}): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'tokenvault-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name })) });
  if (options.conditionalWrites !== false) server.middleware.unshift(conditionalPut());
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

type KoaContext = Parameters<S3rver['middleware'][number]>[0];

/** Koa middleware: a path-style PutObject with `If-None-Match: *` on an existing key answers 412, like S3. */
function conditionalPut(): S3rver['middleware'][number] {
  const locks = new Map<string, Promise<unknown>>();
  return async (ctx: KoaContext, next: () => Promise<unknown>) => {
    const [bucket, ...rest] = ctx.path.slice(1).split('/').map((part: string) => decodeURIComponent(part));
    // The SDK adds ?x-id=PutObject; other queries are multipart parts, ACLs, tags, … (not object writes).
    const query = ctx.querystring.split('&').filter((part) => part !== '' && !part.startsWith('x-id='));
    const isPlainPut = ctx.method === 'PUT' && rest.length > 0 && query.length === 0 && ctx.get('x-amz-copy-source') === '';
    if (!isPlainPut || ctx.get('if-none-match') !== '*' || bucket === undefined) return next();
    const key = rest.join('/');
    const id = `${bucket}/${key}`;
    const previous = locks.get(id) ?? Promise.resolve();
    const run = previous.then(async () => {
      if (await ctx.store.existsObject(bucket, key)) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
        return;
      }
      await next();
    });
    const settled = run.catch(() => undefined);
    locks.set(id, settled);
    try {
      await run;
    } finally {
      if (locks.get(id) === settled) locks.delete(id);
    }
  };
}
