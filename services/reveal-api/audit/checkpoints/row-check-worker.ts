import { parentPort, threadId, workerData } from 'node:worker_threads';
import { createDatabase, type DatabaseConfig } from '../../../../db/client.js';
import { checkRowsAgainstLeaves, type RowCheckRequest } from '../../../../lib/audit/leaf-check.js';

/**
 * The worker thread of RowChecker: its own one-connection pool, one check at a time. Messages in:
 * `{ id, request }`; out: `{ id, result }` or `{ id, error }`.
 */
const config = workerData as DatabaseConfig;
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
