-- Signed checkpoints of the audit chain's head (docs/audit-format.md). This copy is a
-- convenience for the reveal-api and auditors: the copies that count against the database
-- owner are the ones published outside PostgreSQL (file, log line, S3 Object Lock).
CREATE TABLE "audit_checkpoints" (
	"idx" bigint PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"body" text NOT NULL,
	"signature" bytea NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
GRANT SELECT, INSERT ON audit_checkpoints TO reveal_api;
--> statement-breakpoint
GRANT SELECT ON audit_checkpoints TO auditor;
--> statement-breakpoint
-- Append-only like audit_log, for everyone, the owner included unless they disable the triggers
-- (which the signatures and the external copies then expose).
CREATE FUNCTION audit_checkpoints_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_refuse_change();
