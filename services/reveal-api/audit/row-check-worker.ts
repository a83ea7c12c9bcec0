import { setPriority } from 'node:os';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createDatabase, type DatabaseConfig } from '../../../db/client.js';
import { checkRowsAgainstLeaves, type RowCheckRequest } from '../../../lib/audit/leaf-check.js';

/**
 * The worker thread of RowChecker: its own one-connection pool, one check at a time. Messages in:
 * `{ id, request }`; out: `{ id, result }` or `{ id, error }`.
 */
const config = workerData as DatabaseConfig;
// The lowest priority, for this thread only (on Linux a nice value belongs to the calling thread):
// the re-hashing then takes the CPU that serving requests leaves idle instead of delaying them. It is
// due within a checkpoint interval, not within a request; on a machine saturated for a whole
// interval the checkpoint is late, never skipped. (bench:reveal, checkpoints every 10 s: 0.92×
// req/s and p99 ×1.4 at normal priority, 0.97× and p99 ×1.02 at 19.)
try {
  setPriority(19);
} catch {
  // Not permitted on this platform or in this container: the check still runs, at normal priority.
}
const database = createDatabase({ ...config, poolSize: 1 }, { applicationName: 'tokenvault-checkpoint-check' });
const port = parentPort!;

port.on('message', (message: { id: number; request: RowCheckRequest } | 'close') => {
  if (message === 'close') {
    void database.close().finally(() => port.close());
    return;
  }
  checkRowsAgainstLeaves(database.pool, message.request).then(
    (result) => port.postMessage({ id: message.id, result: { ...result, threadId } }),
    (error: unknown) => port.postMessage({ id: message.id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
  );
});
