import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { canonicalize, type AuditRow } from './chain.js';
import { checkpointLine, parseCheckpoint, type SignedCheckpoint } from './checkpoint.js';

/** `{"type":"row", …every column…, "hash":"…"}`: the canonical columns, as hashed, plus the hash. */
export function rowLine(row: AuditRow): string {
  return `{"type":"row",${canonicalize(row).slice(1, -1)},"hash":"${row.hash.toString('hex')}"}`;
}

export { checkpointLine };

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const nullableText = z.string().nullable();

const rowLineSchema = z.object({
  type: z.literal('row'),
  seq: z.number().int().min(1),
  occurred_at: z.string(),
  action: z.string(),
  actor: nullableText,
  roles: z.array(z.string()),
  client_address: nullableText,
  request_id: nullableText,
  purpose: nullableText,
  ticket: nullableText,
  tokens: z.array(z.string()),
  field_counts: z.record(z.string(), z.number()),
  outcome: z.string(),
  reason: nullableText,
  prev_hash: hex64.nullable(),
  hash: hex64,
});

export type ExportLine = { type: 'row'; row: AuditRow } | { type: 'checkpoint'; checkpoint: SignedCheckpoint };

export class ExportFormatError extends Error {}

/** Parses one line of an export or checkpoints file; throws ExportFormatError naming the line. */
export function parseExportLine(text: string, lineNumber: number): ExportLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ExportFormatError(`line ${lineNumber}: not JSON`);
  }
  const type = (value as { type?: unknown } | null)?.type;
  try {
    if (type === 'checkpoint') return { type: 'checkpoint', checkpoint: parseCheckpoint(value) };
    if (type === 'row') {
      const line = rowLineSchema.parse(value);
      return {
        type: 'row',
        row: {
          seq: line.seq,
          occurredAt: line.occurred_at,
          action: line.action,
          actor: line.actor,
          roles: line.roles,
          clientAddress: line.client_address,
          requestId: line.request_id,
          purpose: line.purpose,
          ticket: line.ticket,
          tokens: line.tokens,
          fieldCounts: line.field_counts,
          outcome: line.outcome,
          reason: line.reason,
          prevHash: line.prev_hash === null ? null : Buffer.from(line.prev_hash, 'hex'),
          hash: Buffer.from(line.hash, 'hex'),
        },
      };
    }
  } catch (error) {
    const issue = error instanceof z.ZodError ? error.issues[0] : undefined;
    throw new ExportFormatError(`line ${lineNumber}: invalid ${String(type)}${issue === undefined ? '' : ` (${issue.path.join('.')}: ${issue.message})`}`);
  }
  throw new ExportFormatError(`line ${lineNumber}: unknown type ${JSON.stringify(type)} (expected "row" or "checkpoint")`);
}

/** Streams the lines of an NDJSON file (blank lines skipped), parsed. */
export async function* readExportFile(file: string): AsyncGenerator<ExportLine> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNumber = 0;
  for await (const text of lines) {
    lineNumber += 1;
    if (text.trim() === '') continue;
    yield parseExportLine(text, lineNumber);
  }
}
