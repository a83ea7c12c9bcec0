import type { FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { AuditSigner } from '../../../lib/keys/audit-signer.js';
import type { CheckpointerState } from '../audit/checkpoints/checkpointer.js';
import type { AuditChainMonitor } from '../audit/monitor.js';
import type { ApprovalDesk } from '../approvals/desk.js';
import type { BudgetReconciler } from '../budget/reconciler.js';
import type { AuditExporter } from '../audit/exporter.js';
import type { Principal } from '../auth/jwt-verifier.js';
import type { Auditor } from '../audit/auditor.js';
import type { RevealMetrics } from '../metrics.js';
import type { Policy } from '../policy/policy.js';
import type { ActiveTokenKey } from '../../../lib/keys/active-token-key.js';
import type { LoginRowAuthenticator } from '../../../lib/keys/login-row-keys.js';
import type { Reveals } from '../reveal/reveal.js';
import type { Vault } from '../vault/vault.js';
import type { SignedTreeSize } from '../../../lib/audit/signed-tree.js';

/** What the route plugins share; built once per app. */
export interface RouteContext {
  pool: pg.Pool;
  policy: Policy;
  vault: Vault;
  tokenizer: ActiveTokenKey;
  /** Checks the tags of user_logins rows before a person request serves or erases them. */
  loginRows: LoginRowAuthenticator;
  auditor: Auditor;
  /** Incremental, single-flight verification of the stored log against its checkpoints. */
  auditMonitor: AuditChainMonitor;
  /** The checkpoint signing key, when checkpoints are configured. */
  auditSigner: AuditSigner | undefined;
  /** What the checkpointer last did (readiness), when checkpoints are configured. */
  checkpoints: CheckpointerState | undefined;
  metrics: RevealMetrics;
  /** The newest signed checkpoint's tree size, the default size of proofs (cached for a second). */
  signedTreeSize: () => Promise<SignedTreeSize | undefined>;
  /** The reveal use case (triage, resolve, charge, audit, metrics): POST /reveal and person access. */
  reveals: Reveals;
  approvals: ApprovalDesk;
  /** Budget usage against the audit chain (one elected replica per round; on demand for /audit/verify). */
  budgetReconciler: BudgetReconciler;
  /** GET /audit/export: a bounded number of low-priority export processes per replica. */
  auditExporter: AuditExporter;
  authenticate: (request: FastifyRequest) => Promise<void>;
}

/** Routes that declare a permission are authenticated first (http/authorize.ts), so a principal is always there in their handlers. */
export function principalOf(request: FastifyRequest): Principal {
  const principal = request.principal;
  if (principal === undefined) throw new Error('route reached without authentication');
  return principal;
}
