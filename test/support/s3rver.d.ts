// s3rver ships no types: the part of its API the tests use.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';
  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory: string;
    resetOnClose?: boolean;
    configureBuckets?: { name: string; configs?: unknown[] }[];
  }
  /** The Koa context as s3rver's middleware sees it (the fields the test server's middleware uses). */
  interface S3rverContext {
    path: string;
    method: string;
    querystring: string;
    status: number;
    type: string;
    body: unknown;
    get(header: string): string;
    store: { existsObject(bucket: string, key: string): Promise<boolean> };
  }
  type S3rverMiddleware = (ctx: S3rverContext, next: () => Promise<unknown>) => Promise<unknown>;
  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware stack (s3rver extends Koa). */
    middleware: S3rverMiddleware[];
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }
}
