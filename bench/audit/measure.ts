/**
 * Child process of bench:audit: runs one export or one offline verification and reports its
 * wall time and peak RSS (process.resourceUsage().maxRSS) to the parent over IPC, so each
 * measurement is a fresh process of its own.
 */
import { runAuditExport } from '../../cli/audit-export.js';
import { runAuditVerify } from '../../cli/audit-verify.js';

interface Job {
  kind: 'export' | 'verify';
  databaseUrl: string;
  exportFile: string;
  publicKeyFile: string;
}

const quiet = { out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
const lines: string[] = [];

process.once('message', (job: Job) => {
  const started = performance.now();
  const run =
    job.kind === 'export'
      ? runAuditExport(['--out', job.exportFile], { DATABASE_URL: job.databaseUrl, DATABASE_ROLE: 'auditor' }, quiet)
      : runAuditVerify({}, quiet, ['--export', job.exportFile, '--public-key', job.publicKeyFile]);
  void run.then((code) => {
    process.send?.({ code, seconds: (performance.now() - started) / 1000, maxRssMiB: process.resourceUsage().maxRSS / 1024, output: lines.join('\n') });
    process.disconnect();
  });
});
process.send?.('ready');
