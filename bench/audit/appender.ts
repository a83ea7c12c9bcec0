/**
 * Child process of bench:audit --sections appends: one "replica", a process of its own with
 * its own pool and the reveal-api's AuditWriter (group commit, chain lock, Merkle nodes unless
 * told otherwise). `concurrency` loops append reveal-like entries until the deadline; it reports
 * how many committed, in how many transactions, and their latencies.
 */
import { createDatabase } from '../../db/client.js';
import type { AuditEntry } from '../../lib/audit/entry.js';
import { AuditWriter } from '../../lib/audit/writer.js';

export interface AppendJob {
  databaseUrl: string;
  poolSize: number;
  concurrency: number;
  seconds: number;
  tokens: number;
  treeNodes: boolean;
  replica: number;
}

export interface AppendResult {
  appends: number;
  batches: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
}

process.once('message', (job: AppendJob) => {
  const database = createDatabase({ url: job.databaseUrl, role: 'reveal_api', poolSize: job.poolSize }, { applicationName: `bench-appender-${job.replica}` });
  let batches = 0;
  const writer = new AuditWriter(database.pool, { treeNodes: job.treeNodes, onBatch: () => (batches += 1) });
  const entry = (loop: number, index: number): AuditEntry => ({
    action: 'reveal',
    actor: `investigator-${job.replica}-${loop}`,
    roles: ['investigator'],
    clientAddress: '10.0.0.1',
    requestId: `r${job.replica}-${loop}-${index}`,
    purpose: 'benchmark: fraud investigation load test',
    ticket: 'BENCH-1',
    tokens: Array.from({ length: job.tokens }, (_, token) => `ip_v1_${String((index * 131 + token) % 1_000_003).padStart(43, 'A')}`),
    fieldCounts: { ip: job.tokens },
    outcome: 'allowed',
    reason: `revealed=${job.tokens}`,
  });
  const latenciesMs: number[] = [];
  let appends = 0;
  let errors = 0;
  // Warm-up: connection, prepared statements, the writer's known head.
  void writer
    .append(entry(0, 0))
    .then(() => {
      process.send?.('ready');
      return new Promise<void>((resolve) => process.once('message', () => resolve()));
    })
    .then(async () => {
      const started = performance.now();
      const deadline = started + job.seconds * 1000;
      batches = 0;
      await Promise.all(
        Array.from({ length: job.concurrency }, async (_, loop) => {
          for (let index = 1; performance.now() < deadline; index += 1) {
            const t0 = performance.now();
            try {
              await writer.append(entry(loop, index));
              latenciesMs.push(performance.now() - t0);
              appends += 1;
            } catch {
              errors += 1;
            }
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      await writer.close();
      await database.close();
      // Disconnect once the report is written: a large message still queued would be lost.
      process.send?.({ appends, batches, seconds, latenciesMs, errors } satisfies AppendResult, undefined, {}, () => process.disconnect());
    });
});
process.send?.('started');
