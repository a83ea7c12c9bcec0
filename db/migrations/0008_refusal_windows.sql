-- Refusal accounting that survives a crash. A flood of refusals (401, 403, 413, 415, 429) gets one
-- audit row for the first refusal per source and window, and one summary row with the count of
-- the rest when the window closes. Until then the count lives in the replica's memory and here:
-- each replica stores its open windows' counts about once a second, so a kill -9 loses at most
-- that last second. A window closes by writing its summary row and deleting its row here, in one
-- transaction; a row nobody has updated for a while belongs to a replica that stopped, and any
-- replica writes its summary ("recovered") and deletes it, in one transaction, exactly once.
-- The audit chain, not this table, is the record: an owner who edits a row here before it is
-- summarised changes the count, and that is all.
CREATE TABLE "refusal_windows" (
  "id" uuid PRIMARY KEY,
  -- [source, action, code...] as JSON: sub:<subject> or addr:<client address>
  "source" text NOT NULL,
  "code" varchar(64) NOT NULL,
  "window_start" timestamp with time zone NOT NULL,
  "window_end" timestamp with time zone NOT NULL,
  -- refusals after the first (the first has its own audit row)
  "refusals" integer NOT NULL,
  "bytes" bigint NOT NULL,
  -- the summary row's audit entry without its reason (actor, roles, address, request id of the first)
  "summary" jsonb NOT NULL,
  "updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "refusal_windows_updated_at_idx" ON "refusal_windows" USING btree ("updated_at");
--> statement-breakpoint
REVOKE ALL ON refusal_windows FROM PUBLIC;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON refusal_windows TO reveal_api;
--> statement-breakpoint
GRANT SELECT ON refusal_windows TO auditor;
