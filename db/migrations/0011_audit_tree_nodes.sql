-- The audit log as an RFC 9162 Merkle tree (docs/transparency-log.md): one row per complete
-- subtree. Node (level, idx) covers leaves [idx·2^level, (idx+1)·2^level); leaf i is audit_log
-- row seq = i + 1, its hash SHA-256(0x00 || the row's canonical bytes). A node is written once,
-- when its last leaf is appended, in the transaction of that audit row, under the chain lock
-- (lib/audit/insert.ts, writer.ts), and never changes: every past tree size is provable from
-- the same rows. About two rows per audit row.
-- Rows written before this migration get their leaves from a TypeScript backfill (npm run
-- db:migrate, and the reveal-api's catch-up): the leaf is the row's RFC 8785 form exactly as
-- lib/audit/chain.ts canonicalize writes it, which plain SQL cannot reproduce byte for byte.
CREATE TABLE "audit_tree_nodes" (
  "level" smallint NOT NULL,
  "idx" bigint NOT NULL,
  "hash" bytea NOT NULL,
  CONSTRAINT "audit_tree_nodes_pkey" PRIMARY KEY ("level", "idx"),
  CONSTRAINT "audit_tree_nodes_position_check" CHECK ("level" >= 0 AND "level" <= 62 AND "idx" >= 0),
  CONSTRAINT "audit_tree_nodes_hash_check" CHECK (octet_length("hash") = 32)
);
--> statement-breakpoint
REVOKE ALL ON audit_tree_nodes FROM PUBLIC;
--> statement-breakpoint
GRANT SELECT, INSERT ON audit_tree_nodes TO reveal_api;
--> statement-breakpoint
GRANT SELECT ON audit_tree_nodes TO auditor;
--> statement-breakpoint
-- Append-only like audit_log, for everyone, the owner included unless they disable the triggers.
-- What stored nodes prove is bounded by that: only signed checkpoints published outside the
-- database (and witnessed) bind a tree size to its root.
CREATE FUNCTION audit_tree_nodes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_tree_nodes is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
--> statement-breakpoint
CREATE TRIGGER audit_tree_nodes_no_update_delete BEFORE UPDATE OR DELETE ON audit_tree_nodes
  FOR EACH ROW EXECUTE FUNCTION audit_tree_nodes_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_tree_nodes_no_truncate BEFORE TRUNCATE ON audit_tree_nodes
  FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_nodes_refuse_change();
