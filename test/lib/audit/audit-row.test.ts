import { getTableColumns } from 'drizzle-orm';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { auditLog } from '../../../db/schema.js';
import { AUDIT_COLUMNS, auditRowJsonSchema } from '../../../lib/audit/audit-row.js';
import { canonicalize, chainHash, rowFromJson, rowJson, type AuditContent, type AuditRow } from '../../../lib/audit/chain.js';
import { ROW_COLUMNS } from '../../../lib/audit/reader.js';
import { insertRows } from '../../../lib/audit/sql.js';
import { auditContent } from '../../support/audit-content.js';

const table = Object.values(getTableColumns(auditLog));

function sampleRow(): AuditRow {
  const content: AuditContent = auditContent(2, Buffer.alloc(32, 7));
  return { ...content, hash: chainHash(content) };
}

describe('the audit-row schema', () => {
  it('names exactly the columns of the audit_log table, in table order', () => {
    expect(AUDIT_COLUMNS).toEqual(table.map((column) => column.name));
  });

  it('allows null exactly in the columns the table allows it in', () => {
    for (const column of table) {
      const schema: z.ZodType = auditRowJsonSchema.shape[column.name as keyof typeof auditRowJsonSchema.shape];
      expect({ column: column.name, nullable: schema.safeParse(null).success }).toEqual({ column: column.name, nullable: !column.notNull });
    }
  });

  it('gives the in-memory row the table definition\'s property names', () => {
    // Checked by the compiler (npm test typechecks first), and at run time on a row read back from JSON.
    expectTypeOf<keyof AuditRow>().toEqualTypeOf<keyof typeof auditLog.$inferSelect>();
    expect(Object.keys(rowFromJson(rowJson(sampleRow()))).sort()).toEqual(Object.keys(getTableColumns(auditLog)).sort());
  });

  it('is the canonical form\'s key set plus the hash', () => {
    const canonicalKeys = Object.keys(JSON.parse(canonicalize(sampleRow())) as object);
    expect([...canonicalKeys, 'hash'].sort()).toEqual([...AUDIT_COLUMNS].sort());
  });

  it('round-trips a row through its JSON form, which the schema accepts', () => {
    const row = sampleRow();
    const json = rowJson(row);
    expect(auditRowJsonSchema.parse(json)).toEqual(json);
    expect(rowFromJson(json)).toEqual(row);
    expect(rowFromJson(rowJson({ ...row, seq: 1, prevHash: null }))).toEqual({ ...row, seq: 1, prevHash: null });
  });

  it('reads and inserts every column', () => {
    for (const column of AUDIT_COLUMNS) {
      expect(ROW_COLUMNS).toMatch(new RegExp(`\\b${column}\\b`));
      expect(insertRows('$1')).toMatch(new RegExp(`\\br\\.${column}\\b`));
    }
  });
});
