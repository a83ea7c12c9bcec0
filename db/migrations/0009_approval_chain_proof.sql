-- Collection proves an approved reveal request from the audit chain (issue 16): it reads every
-- row about the request (its reveal.request row, approvals, denials, collections, expiry), not
-- only the approvals. Partial like the index it replaces: ordinary audit inserts, which hold the
-- chain lock, only evaluate the predicate.
CREATE INDEX "audit_log_request_steps_idx" ON "audit_log" USING btree ("request_id")
  WHERE "action" IN ('reveal.request', 'approval.approve', 'approval.deny', 'reveal.collect', 'reveal.expire');
--> statement-breakpoint
DROP INDEX "audit_log_approvals_idx";
