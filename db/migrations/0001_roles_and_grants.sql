-- Least-privilege roles. They are NOLOGIN groups: a deployment grants them to login users
-- (GRANT ingestor TO ingestor_svc) or a service switches to one with DATABASE_ROLE.
-- Roles are cluster-wide, so creation tolerates a role another database already created.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['ingestor', 'reveal_api', 'analyst', 'auditor'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        -- Another database of this cluster created it between our check and our CREATE.
        NULL;
      END;
    END IF;
  END LOOP;
END $$;
--> statement-breakpoint
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
--> statement-breakpoint
-- ingestor: writes rows, vault entries and quarantine; creates and reads its own wrapped keys.
GRANT USAGE ON SCHEMA public TO ingestor, reveal_api, analyst, auditor;
--> statement-breakpoint
GRANT INSERT ON user_logins, pii_vault, quarantine TO ingestor;
--> statement-breakpoint
GRANT SELECT, INSERT ON data_keys, token_keys TO ingestor;
--> statement-breakpoint
GRANT USAGE ON SEQUENCE data_keys_id_seq TO ingestor;
--> statement-breakpoint
-- reveal_api: reads the vault and wrapped keys, erases vault rows, appends to and reads the audit log.
GRANT SELECT, DELETE ON pii_vault TO reveal_api;
--> statement-breakpoint
GRANT SELECT ON data_keys, token_keys TO reveal_api;
--> statement-breakpoint
GRANT SELECT, INSERT ON audit_log TO reveal_api;
--> statement-breakpoint
-- analyst: the tokenised analytics table, nothing else.
GRANT SELECT ON user_logins TO analyst;
--> statement-breakpoint
-- auditor: the audit log, nothing else.
GRANT SELECT ON audit_log TO auditor;
--> statement-breakpoint
-- The audit log is append-only for everyone, the owner included, unless the owner
-- deliberately disables the triggers (which the hash chain then exposes).
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
