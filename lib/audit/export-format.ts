import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { auditRowJsonSchema } from './audit-row.js';
import { canonicalize, rowFromJson, type AuditRow } from './chain.js';
import { checkpointLine, parseCheckpoint } from './checkpoint.js';
import { jsonRecord, NOTE_CHECKPOINT_TYPE, parseNoteCheckpointLine, type CheckpointRecord } from './checkpoint-record.js';
import { canonicalJson } from './jcs.js';

/** `{"type":"row", …every column…, "hash":"…"}`: the canonical columns, as hashed, plus the hash. */
export function rowLine(row: AuditRow): string {
  return `{"type":"row",${canonicalize(row).slice(1, -1)},"hash":"${row.hash.toString('hex')}"}`;
}

export { checkpointLine };

const rowLineSchema = auditRowJsonSchema.extend({ type: z.literal('row') });

/**
 * The first line of an export: when it started (rows committed before then are all in it) and
 * where (after_seq > 0: a resumed part). A verifier uses `started_at` to tell a truncated log
 * from an export that is merely older than a checkpoint.
 */
export interface ExportStart {
  startedAt: string;
  afterSeq: number;
}

export const EXPORT_START_TYPE = 'export_start';

export function exportStartLine(start: ExportStart): string {
  return canonicalJson({ type: EXPORT_START_TYPE, started_at: start.startedAt, after_seq: start.afterSeq });
}

const exportStartSchema = z.object({ type: z.literal(EXPORT_START_TYPE), started_at: z.string().min(1).max(64), after_seq: z.number().int().min(0) }).strict();

/** A line of an export or a checkpoints file: a row, a checkpoint record (v1 JSON or signed note), or the export's start. */
export type ExportLine = { type: 'row'; row: AuditRow } | { type: 'checkpoint'; record: CheckpointRecord } | { type: 'export_start'; start: ExportStart };

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
    if (type === 'checkpoint') return { type: 'checkpoint', record: jsonRecord(parseCheckpoint(value)) };
    if (type === NOTE_CHECKPOINT_TYPE) return { type: 'checkpoint', record: parseNoteCheckpointLine(value) };
    if (type === EXPORT_START_TYPE) {
      const start = exportStartSchema.parse(value);
      return { type: 'export_start', start: { startedAt: start.started_at, afterSeq: start.after_seq } };
    }
    if (type === 'row') {
      const { type: _type, ...row } = rowLineSchema.parse(value);
      return { type: 'row', row: rowFromJson(row) };
    }
  } catch (error) {
    const issue = error instanceof z.ZodError ? error.issues[0] : undefined;
    throw new ExportFormatError(`line ${lineNumber}: invalid ${String(type)}${issue === undefined ? '' : ` (${issue.path.join('.')}: ${issue.message})`}`);
  }
  throw new ExportFormatError(`line ${lineNumber}: unknown type ${JSON.stringify(type)} (expected "row", "checkpoint", "${NOTE_CHECKPOINT_TYPE}" or "${EXPORT_START_TYPE}")`);
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
