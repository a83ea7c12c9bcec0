import type { AuditEntry } from '../audit/entry.js';

/** The actor of audit rows written by scheduled maintenance (no person, no roles). */
export const MAINTENANCE_ACTOR = 'system:maintenance';

export type SystemAction = 'retention.drop_partition' | 'retention.shred' | 'retention.quarantine' | 'partition.migrate';

/** An audit entry for a system action: counts in field_counts, what and why in reason and purpose. */
export function systemEntry(action: SystemAction, detail: { purpose: string; reason: string; counts: Record<string, number>; tokens?: readonly string[] }): AuditEntry {
  return {
    action,
    actor: MAINTENANCE_ACTOR,
    roles: [],
    clientAddress: null,
    requestId: null,
    purpose: detail.purpose,
    ticket: null,
    tokens: detail.tokens ?? [],
    fieldCounts: detail.counts,
    outcome: 'allowed',
    reason: detail.reason,
  };
}
