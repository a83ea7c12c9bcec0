/**
 * Child process of bench:audit: runs one export or one offline verification and reports its
 * wall time and peak RSS (process.resourceUsage().maxRSS) to the parent over IPC, so each
 * measurement is a fresh process of its own. It calls what `npm run audit:export` and
 * `npm run audit:verify -- --export` run (lib/audit), without their argument parsing.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDatabase } from '../../db/client.js';
import { verifyOffline } from '../../lib/audit/offline.js';
import { exportLines } from '../../lib/audit/reader.js';
import { describeVerdict } from '../../lib/audit/checkpointed-log-verifier.js';

interface Job {
  kind: 'export' | 'verify';
  databaseUrl: string;
  exportFile: string;
  publicKeyFile: string;
}

const lines: string[] = [];

/** The audit log to `file` as NDJSON, read as the auditor role, one page in flight at a time (as audit:export). */
async function exportLog(job: Job): Promise<number> {
  const database = createDatabase({ url: job.databaseUrl, role: 'auditor', poolSize: 1 }, { applicationName: 'bench-audit-export' });
  try {
    await pipeline(Readable.from(exportLines(database.pool), { highWaterMark: 1 }), createWriteStream(job.exportFile, { mode: 0o640 }));
    return 0;
  } catch (error) {
    lines.push(`audit log could not be exported: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  } finally {
    await database.close();
  }
}

/** The export checked offline against the public key (as audit:verify --export): 0 intact, 1 tampered, 2 unreadable. */
async function verifyExport(job: Job): Promise<number> {
  try {
    const { verdict } = await verifyOffline({ exportFile: job.exportFile, publicKeyFile: job.publicKeyFile });
    lines.push(describeVerdict(verdict));
    return verdict.ok ? 0 : 1;
  } catch (error) {
    lines.push(error instanceof Error ? error.message : String(error));
    return 2;
  }
}

process.once('message', (job: Job) => {
  const started = performance.now();
  const run = job.kind === 'export' ? exportLog(job) : verifyExport(job);
  void run.then((code) => {
    process.send?.({ code, seconds: (performance.now() - started) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024, output: lines.join('\n') });
    process.disconnect();
  });
});
process.send?.('ready');
