import { runAuditExport } from '../../cli/audit-export.js';
import { runAuditVerify } from '../../cli/audit-verify.js';
import type { Env } from '../../lib/config/env.js';

/** `npm run audit:verify -- …args` in this process: its exit code and every line it printed (stdout and stderr, in order). */
export async function auditVerify(env: Env, args: string[] = []): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await runAuditVerify(env, { out: (line) => lines.push(line), err: (line) => lines.push(line) }, args);
  return { code, text: lines.join('\n') };
}

/** `npm run audit:export -- --out <file>` against a database, as an auditor does before verifying offline; its exit code. */
export function auditExportTo(databaseUrl: string, file: string): Promise<number> {
  return runAuditExport(['--out', file], { DATABASE_URL: databaseUrl }, { out: () => undefined, err: () => undefined });
}
