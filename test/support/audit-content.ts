import type { AuditContent } from '../../lib/audit/chain.js';

/** An audit entry's content (a 1-token reveal) at `seq`, linked to `prevHash`, with the fields a test changes. */
export function auditContent(seq: number, prevHash: Buffer | null, overrides: Partial<AuditContent> = {}): AuditContent {
  return {
    seq,
    occurredAt: '2024-05-01T12:00:00.123Z',
    action: 'reveal',
    actor: 'alice',
    roles: ['investigator'],
    clientAddress: '127.0.0.1',
    requestId: `req-${seq}`,
    purpose: 'fraud investigation',
    ticket: null,
    tokens: ['ip_v1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    fieldCounts: { ip: 1, device_id: 0 },
    outcome: 'allowed',
    reason: null,
    prevHash,
    ...overrides,
  };
}
