import type pg from 'pg';
import { z } from 'zod';
import { auditRowJsonSchema } from '../../../lib/audit/audit-row.js';
import { entriesAboutTokens } from '../../../lib/audit/entries-about.js';
import { inclusionReceipts, notCoveredNote } from '../../../lib/audit/receipts.js';
import { presentCheckpoint, presentInclusion } from './proofs.js';

/** Entries listed per access request; more are flagged (`truncated`), and an auditor can page GET /audit?token=… */
export const MAX_TRAIL_ENTRIES = 1_000;

const trailEntry = auditRowJsonSchema.pick({ seq: true, occurred_at: true, action: true, actor: true, outcome: true }).extend({
  inclusion: z
    .object({ tree_size: z.number().int(), leaf_index: z.number().int(), leaf_hash: z.string(), proof: z.array(z.string()), root: z.string() })
    .nullable()
    .describe('Inclusion proof to the newest signed checkpoint (RFC 9162); null: not yet covered, see note'),
  note: z.string().optional(),
});

export const auditTrailSchema = z
  .object({
    checkpoint: z.object({ index: z.number().int(), tree_size: z.number().int() }).nullable().describe('The newest signed checkpoint the proofs lead to (null: none yet)'),
    entries: z.array(trailEntry).describe('Newest first'),
    truncated: z.boolean().describe(`true: more than ${MAX_TRAIL_ENTRIES} entries; the oldest are left out`),
  })
  .describe(
    "Who did what with this person's tokens: every audit entry that named one of them (reveals, collections, erasures, approval steps, earlier access requests), each with an inclusion proof. This request's own entry is audit_seq.",
  );

/**
 * The audit entries about a person's tokens (the hashed GIN index), each with an inclusion proof
 * to the newest signed checkpoint, all proofs from one node query.
 */
export async function personAuditTrail(db: Pick<pg.Pool, 'query'>, tokens: readonly string[]): Promise<z.infer<typeof auditTrailSchema>> {
  const { entries, more } = await entriesAboutTokens(db, tokens, MAX_TRAIL_ENTRIES);
  const receipts = await inclusionReceipts(
    db,
    entries.map((entry) => entry.seq),
  );
  return {
    checkpoint: presentCheckpoint(receipts.checkpoint),
    entries: entries.map((entry) => {
      const proof = receipts.proofs.get(entry.seq);
      return {
        seq: entry.seq,
        occurred_at: entry.occurredAt,
        action: entry.action,
        actor: entry.actor,
        outcome: entry.outcome,
        inclusion: proof === undefined ? null : presentInclusion(proof),
        ...(proof === undefined ? { note: notCoveredNote(entry.seq, receipts) } : {}),
      };
    }),
    truncated: more,
  };
}
