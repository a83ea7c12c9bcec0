-- Checkpoints become C2SP signed notes over the Merkle tree of the audit rows (issue 17,
-- docs/audit-format.md §4). The v1 JSON checkpoints already stored stay as they are and keep
-- verifying; a note row carries the signed note (with the witnesses' cosignatures), the tree
-- size and root it signs, when it was signed, and the consistency proof from the previous note
-- checkpoint's size (published with it), instead of body/signature. Indexes continue:
-- the first note checkpoint follows the last JSON one. The table stays append-only (0005).
ALTER TABLE "audit_checkpoints" ALTER COLUMN "body" DROP NOT NULL;
--> statement-breakpoint
ALTER TABLE "audit_checkpoints" ALTER COLUMN "signature" DROP NOT NULL;
--> statement-breakpoint
ALTER TABLE "audit_checkpoints" ADD COLUMN "note" text, ADD COLUMN "tree_size" bigint, ADD COLUMN "root_hash" bytea, ADD COLUMN "signed_at" text,
  ADD COLUMN "proof_from_size" bigint, ADD COLUMN "consistency_proof" bytea[];
--> statement-breakpoint
ALTER TABLE "audit_checkpoints" ADD CONSTRAINT "audit_checkpoints_one_form" CHECK (
  ("note" IS NULL AND "tree_size" IS NULL AND "root_hash" IS NULL AND "signed_at" IS NULL AND "proof_from_size" IS NULL AND "consistency_proof" IS NULL
    AND "body" IS NOT NULL AND "signature" IS NOT NULL)
  OR ("note" IS NOT NULL AND "tree_size" = "seq" AND octet_length("root_hash") = 32 AND "signed_at" IS NOT NULL AND "body" IS NULL AND "signature" IS NULL
    AND ("proof_from_size" IS NULL) = ("consistency_proof" IS NULL))
);
