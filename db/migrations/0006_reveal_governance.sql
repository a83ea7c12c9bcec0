-- Reveal governance (budgets, four-eyes approval). Everything here is derived from, or mirrored
-- by, rows of the audit chain: an administrator who edits these tables can refuse a reveal
-- or grant a budget back, but cannot make a reveal happen without its rows in the chain, and
-- collection re-checks the approvals against the chain itself (audit_log_approvals_idx).

-- Values revealed per actor in the current window of each budget ('minute', 'hour', 'day',
-- 'break_glass'). One row per actor and budget: a new window overwrites the old one, so the
-- table never grows beyond actors x budgets. Only written while the audit chain lock is held,
-- in the transaction of the audit row that records the reveal.
CREATE TABLE "reveal_budget_usage" (
  "actor" varchar(256) NOT NULL,
  "budget" varchar(16) NOT NULL,
  "window_start" timestamp with time zone NOT NULL,
  "used" integer NOT NULL,
  CONSTRAINT "reveal_budget_usage_pkey" PRIMARY KEY ("actor", "budget")
);
--> statement-breakpoint
-- Reveal requests waiting for approval. Tokens only, never values: values are decrypted when
-- the requester collects an approved request, and never stored.
CREATE TABLE "reveal_requests" (
  "id" uuid PRIMARY KEY,
  "requester" varchar(256) NOT NULL,
  "roles" text[] NOT NULL,
  "purpose" text NOT NULL,
  "ticket" varchar(256),
  "tokens" text[] NOT NULL,
  "field_counts" jsonb NOT NULL,
  "approvals_required" smallint NOT NULL,
  -- [{ "approver": sub, "reason": text, "at": iso }]
  "approvals" jsonb DEFAULT '[]'::jsonb NOT NULL,
  -- pending | approved | denied | collected | expired
  "status" varchar(16) NOT NULL,
  "created_at" timestamp with time zone NOT NULL,
  "expires_at" timestamp with time zone NOT NULL,
  "decided_at" timestamp with time zone,
  "decided_by" varchar(256),
  "decision_reason" text,
  "collected_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "reveal_requests_status_idx" ON "reveal_requests" USING btree ("status", "expires_at");
--> statement-breakpoint
CREATE INDEX "reveal_requests_requester_idx" ON "reveal_requests" USING btree ("requester", "created_at");
--> statement-breakpoint
-- Collection counts the approvals recorded in the chain. Partial: ordinary audit inserts
-- (which hold the chain lock) only evaluate the predicate.
CREATE INDEX "audit_log_approvals_idx" ON "audit_log" USING btree ("request_id") WHERE "action" = 'approval.approve';
--> statement-breakpoint
REVOKE ALL ON reveal_budget_usage, reveal_requests FROM PUBLIC;
--> statement-breakpoint
-- No DELETE: usage rows are overwritten in place, requests end in a final status.
GRANT SELECT, INSERT, UPDATE ON reveal_budget_usage, reveal_requests TO reveal_api;
--> statement-breakpoint
GRANT SELECT ON reveal_requests TO auditor;
