import { chainHash, type AuditRow } from '../../../lib/audit/chain.js';
import type { ChainStep, RevealRequest } from './store.js';

/** What the audit chain proves about an approved reveal request: the facts collection may rely on. */
export interface ApprovalProof {
  ok: true;
  /** The tokens the requester asked for and the approvers approved, as the chain records them. */
  tokens: string[];
  /** Distinct approvers (never the requester) whose rows approve exactly what was requested. */
  approvers: string[];
  /** Approvals the request needs: the larger of what the chain recorded at request time and what the policy asks now. */
  required: number;
  /** When the approval that made the request approved was written (ISO-8601): the ttl runs from here. */
  approvedAt: string;
}

/**
 * Why the chain does not back a request the table says is approved. `policy_raised` is the only
 * one that is not tampering: the chain's approvals satisfy what was required at request time,
 * but the policy now asks for more.
 */
export type ProofFailure =
  | { ok: false; kind: 'unverified'; detail: string }
  | { ok: false; kind: 'policy_raised'; approvals: number; required: number };

const APPROVALS_REQUIRED = /^pending_approval approvals_required=([0-9]{1,4})$/;

/**
 * Checks a request row against the rows of the chain about it (store.readChainSteps):
 *
 * - exactly one `reveal.request` row (outcome pending) for this id, by the stored requester,
 *   with the stored tokens in order and the stored approvals_required;
 * - approvals are `approval.approve` rows (outcome allowed) written after it by distinct
 *   approvers who are not the requester, each approving exactly those tokens, purpose and ticket;
 * - no `approval.deny`, no `reveal.expire`, and no collection that revealed anything;
 * - every row relied on is intact where it stands: its hash recomputes from its content and the
 *   row after it links to it (an owner who edits or inserts one row without re-linking every
 *   later row is caught here; a rewrite of every later row is caught by the signed checkpoints).
 */
export function proveApproval(stored: RevealRequest, steps: readonly ChainStep[], policyRequires: number): ApprovalProof | ProofFailure {
  const unverified = (detail: string): ProofFailure => ({ ok: false, kind: 'unverified', detail });
  const requests = steps.filter((step) => step.row.action === 'reveal.request' && step.row.outcome === 'pending');
  if (requests.length === 0) return unverified('no_request_row');
  if (requests.length > 1) return unverified('several_request_rows');
  const request = requests[0] as ChainStep;
  if (!intact(request)) return unverified(`request_row_altered seq=${request.row.seq}`);
  if (request.row.actor !== stored.requester) return unverified('requester_differs');
  if (!sameList(request.row.tokens, stored.tokens)) return unverified('tokens_differ');
  const recorded = APPROVALS_REQUIRED.exec(request.row.reason ?? '');
  if (recorded === null) return unverified('approvals_required_missing');
  const requiredAtRequest = Number(recorded[1]);
  if (requiredAtRequest !== stored.approvalsRequired) return unverified('approvals_required_differs');

  const later = steps.filter((step) => step.row.seq > request.row.seq);
  if (later.some((step) => step.row.action === 'approval.deny' && step.row.outcome === 'allowed')) return unverified('denied_in_chain');
  if (later.some((step) => step.row.action === 'reveal.expire')) return unverified('expired_in_chain');
  if (later.some((step) => step.row.action === 'reveal.collect' && (step.row.outcome === 'allowed' || step.row.outcome === 'partial'))) {
    return unverified('collected_in_chain');
  }

  const approvers: string[] = [];
  let approvedAt: string | undefined;
  const required = Math.max(requiredAtRequest, policyRequires);
  for (const step of later) {
    const row = step.row;
    if (row.action !== 'approval.approve' || row.outcome !== 'allowed' || row.actor === null || row.actor === stored.requester) continue;
    if (!approvesExactly(row, request.row) || approvers.includes(row.actor)) continue;
    if (!intact(step)) return unverified(`approval_row_altered seq=${row.seq}`);
    approvers.push(row.actor);
    if (approvers.length === required) approvedAt = row.occurredAt;
  }
  if (approvers.length < requiredAtRequest) return unverified(`approvals_missing approvals=${approvers.length} required=${requiredAtRequest}`);
  if (approvers.length < required) return { ok: false, kind: 'policy_raised', approvals: approvers.length, required };
  return { ok: true, tokens: [...request.row.tokens], approvers, required, approvedAt: approvedAt ?? request.row.occurredAt };
}

/** The row's hash recomputes from its content, and the next row (if any) links to that hash. */
function intact(step: ChainStep): boolean {
  if (!chainHash(step.row).equals(step.row.hash)) return false;
  return step.nextPrevHash === undefined || (step.nextPrevHash !== null && step.nextPrevHash.equals(step.row.hash));
}

function approvesExactly(approval: AuditRow, request: AuditRow): boolean {
  return sameList(approval.tokens, request.tokens) && approval.purpose === request.purpose && approval.ticket === request.ticket;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}
