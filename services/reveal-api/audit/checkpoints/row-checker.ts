import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DatabaseConfig } from '../../../../db/client.js';
import type { RowCheckRequest, RowCheckResult } from '../../../../lib/audit/leaf-check.js';

/**
 * Runs checkRowsAgainstLeaves (re-hashing every row since the last checkpoint) on a worker
 * thread with its own database connection, so a checkpoint never pauses the event loop that
 * serves reveals (issue 17 finding 4). The worker starts on first use and stays until close().
 */
export class RowChecker {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (result: RowCheckResult) => void; reject: (error: Error) => void }>();

  constructor(private readonly database: DatabaseConfig) {}

  check(request: RowCheckRequest): Promise<RowCheckResult> {
    const worker = (this.worker ??= this.start());
    const id = (this.nextId += 1);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, request });
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage('close');
    const timer = setTimeout(() => void worker.terminate(), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private start(): Worker {
    const worker = createWorker(this.database);
    worker.on('message', (message: { id: number; result?: RowCheckResult; error?: string }) => {
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`the row check failed: ${message.error}`));
      else if (message.result !== undefined) waiter?.resolve(message.result);
    });
    const failAll = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    };
    worker.on('error', (error) => failAll(new Error(`the row check worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => failAll(new Error(`the row check worker exited (code ${code})`)));
    // A checkpoint in flight keeps the process alive; an idle worker does not.
    worker.unref();
    return worker;
  }
}

/**
 * The compiled service runs row-check-worker.js directly. From source (tsx, vitest) the worker is
 * TypeScript: a small bootstrap registers tsx's loader in the worker and imports it.
 */
function createWorker(database: DatabaseConfig): Worker {
  const own = new URL(import.meta.url);
  if (!own.pathname.endsWith('.ts')) return new Worker(new URL('./row-check-worker.js', import.meta.url), { workerData: database });
  const workerUrl = new URL('./row-check-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxEsmApi())}).then(({ tsImport }) => tsImport(${JSON.stringify(workerUrl)}, ${JSON.stringify(import.meta.url)}))`;
  return new Worker(bootstrap, { eval: true, workerData: database });
}

/** The file URL of tsx's ESM API (its package exports map, `./esm/api` → import). */
function tsxEsmApi(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: string | { default: string } }> }).exports;
  const entry = exports['./esm/api']?.import;
  const path = typeof entry === 'string' ? entry : entry?.default;
  if (path === undefined) throw new Error('tsx has no ./esm/api export: cannot run the row check worker from source');
  return pathToFileURL(join(dirname(manifest), path)).href;
}
