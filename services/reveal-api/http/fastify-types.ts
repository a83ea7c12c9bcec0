import type { Principal } from '../auth/jwt-verifier.js';
import type { AuditAction } from '../audit/auditor.js';
import type { RoutePermission } from './authorize.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authenticate hook once the bearer token is verified. */
    principal: Principal | undefined;
    /** True once this attempt has its audit row (or the write was tried and failed). */
    audited: boolean;
    /**
     * The seq of this attempt's audit row once it is committed: the response names it
     * (X-Audit-Seq, and `audit_seq` in the bodies of reveals, collections and erasures) so its
     * receipt can be fetched later (GET /audit/entries/{seq}).
     */
    auditSeq: number | undefined;
    /** The JSON body as received (for the size and digest of a refusal without a verified identity; never stored). */
    rawBody: string | undefined;
  }
  interface FastifyContextConfig {
    /** Routes with an action write one audit row per attempt, whatever the outcome. */
    auditAction?: AuditAction;
    /** What the caller's roles must allow; declaring it also makes the route authenticate (http/authorize.ts). */
    permission?: RoutePermission;
  }
}

export {};
