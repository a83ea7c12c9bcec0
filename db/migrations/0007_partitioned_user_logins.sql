-- user_logins becomes a table partitioned by month of create_date (the SentTimestamp date, UTC).
-- Retention is then DROP of whole partitions, and date-bounded queries read only their months.
-- The key is (message_id, create_date): a redelivered message carries the same SentTimestamp,
-- so it lands in the same partition and hits the key there (a partitioned table's unique key
-- must contain the partition column).
--
-- An existing table is renamed to user_logins_unpartitioned. Small ones (a development
-- database, up to 10,000 rows) are moved here and dropped; larger ones are moved online, in resumable batches,
-- by `npm run db:partition` (or the next `npm run maintenance`), while ingestors write the
-- new table. Until then analysts read the remaining old rows in user_logins_unpartitioned.
ALTER TABLE "user_logins" RENAME TO "user_logins_unpartitioned";
--> statement-breakpoint
ALTER TABLE "user_logins_unpartitioned" RENAME CONSTRAINT "user_logins_pkey" TO "user_logins_unpartitioned_pkey";
--> statement-breakpoint
ALTER INDEX "user_logins_masked_ip_idx" RENAME TO "user_logins_unpartitioned_masked_ip_idx";
--> statement-breakpoint
ALTER INDEX "user_logins_masked_device_id_idx" RENAME TO "user_logins_unpartitioned_masked_device_id_idx";
--> statement-breakpoint
ALTER INDEX "user_logins_create_date_idx" RENAME TO "user_logins_unpartitioned_create_date_idx";
--> statement-breakpoint
CREATE TABLE "user_logins" (
	"message_id" varchar(128) NOT NULL,
	"user_id" varchar(128) NOT NULL,
	"device_type" varchar(32) NOT NULL,
	"masked_ip" varchar(256) NOT NULL,
	"masked_device_id" varchar(256) NOT NULL,
	"locale" varchar(32),
	"app_version" varchar(32) NOT NULL,
	"app_version_major" integer,
	"app_version_minor" integer,
	"app_version_patch" integer,
	"create_date" date NOT NULL,
	"sent_at" timestamp with time zone NOT NULL,
	"ingested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"token_key_version" smallint NOT NULL,
	CONSTRAINT "user_logins_pkey" PRIMARY KEY ("message_id", "create_date")
) PARTITION BY RANGE ("create_date");
--> statement-breakpoint
CREATE INDEX "user_logins_masked_ip_idx" ON "user_logins" USING btree ("masked_ip");
--> statement-breakpoint
CREATE INDEX "user_logins_masked_device_id_idx" ON "user_logins" USING btree ("masked_device_id");
--> statement-breakpoint
CREATE INDEX "user_logins_create_date_idx" ON "user_logins" USING btree ("create_date");
--> statement-breakpoint
-- Requests about one person arrive with a user_id.
CREATE INDEX "user_logins_user_id_idx" ON "user_logins" USING btree ("user_id");
--> statement-breakpoint
-- Rows dated outside the prepared months land here, never in a failed batch; maintenance
-- moves them into their own month's partition.
CREATE TABLE "user_logins_default" PARTITION OF "user_logins" DEFAULT;
--> statement-breakpoint
-- Grants on the parent cover every partition when queried through the parent (the only way the
-- services and analysts query); partitions themselves get none, so direct access is refused.
REVOKE ALL ON "user_logins", "user_logins_default" FROM PUBLIC;
--> statement-breakpoint
GRANT INSERT ON "user_logins" TO ingestor;
--> statement-breakpoint
GRANT SELECT ON "user_logins" TO analyst;
--> statement-breakpoint
-- Tokens of dropped partitions whose vault values maintenance still has to check and shred
-- (persisted so an interrupted run resumes). Owner only.
CREATE TABLE "retention_shred_candidates" (
	"token" varchar(256) PRIMARY KEY NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
REVOKE ALL ON "retention_shred_candidates" FROM PUBLIC;
--> statement-breakpoint
-- The partition of the month containing p_day: created empty beside the table and ATTACHed
-- (ATTACH takes only SHARE UPDATE EXCLUSIVE on user_logins, so ingestors keep inserting;
-- CREATE TABLE ... PARTITION OF would block them). Rows of that month already in the default
-- partition are moved into it first, in the same transaction. Returns the partition's name.
CREATE FUNCTION user_logins_prepare_month(p_day date) RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  first_day date := date_trunc('month', p_day)::date;
  next_day date := (date_trunc('month', p_day) + interval '1 month')::date;
  name text := format('user_logins_p%s', to_char(p_day, 'YYYYMM'));
  moved bigint;
BEGIN
  IF to_regclass(name) IS NOT NULL THEN
    RETURN name;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE user_logins INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
  -- The check lets ATTACH skip scanning the new table; dropped once attached.
  EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (create_date >= %L AND create_date < %L)', name, name || '_bounds', first_day, next_day);
  -- Blocks inserts into the default partition while its rows of this month move.
  LOCK TABLE user_logins_default IN SHARE ROW EXCLUSIVE MODE;
  EXECUTE format(
    'WITH moved AS (DELETE FROM user_logins_default WHERE create_date >= %L AND create_date < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
    first_day, next_day, name);
  GET DIAGNOSTICS moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE user_logins ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, first_day, next_day);
  EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', name, name || '_bounds');
  EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', name);
  RAISE NOTICE 'user_logins: partition % prepared (% rows moved from the default partition)', name, moved;
  RETURN name;
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION user_logins_prepare_month(date) FROM PUBLIC;
--> statement-breakpoint
-- Deletes the vault values among p_tokens that no user_logins row references any more
-- (crypto-shredding: the ciphertext was the only copy). Locks pii_vault, then user_logins,
-- in the order ingestors take them, so no ingest transaction can be between "value already
-- in the vault" and "row inserted" while the references are checked.
CREATE FUNCTION shred_unreferenced_vault_values(p_tokens text[])
RETURNS TABLE (token text, field text)
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE pii_vault IN SHARE ROW EXCLUSIVE MODE;
  LOCK TABLE user_logins IN SHARE ROW EXCLUSIVE MODE;
  RETURN QUERY
    DELETE FROM pii_vault AS v
    WHERE v.token = ANY (p_tokens)
      -- Tokens are per field (domain-separated keys, field prefix): only that column can hold one.
      AND CASE v.field
            WHEN 'ip' THEN NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_ip = v.token)
            WHEN 'device_id' THEN NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_device_id = v.token)
            ELSE NOT EXISTS (SELECT 1 FROM user_logins AS u WHERE u.masked_ip = v.token OR u.masked_device_id = v.token)
          END
    RETURNING v.token::text, v.field::text;
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION shred_unreferenced_vault_values(text[]) FROM PUBLIC;
--> statement-breakpoint
-- Requests about one person: the reveal-api role may not read user_logins, only call these
-- two functions (owner's rights, one user_id at a time). It audits each call itself, in the
-- same transaction.
CREATE FUNCTION person_logins(p_user_id text)
RETURNS TABLE (message_id text, create_date date, sent_at timestamptz, ingested_at timestamptz, device_type text,
               locale text, app_version text, masked_ip text, masked_device_id text, partition text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT u.message_id, u.create_date, u.sent_at, u.ingested_at, u.device_type, u.locale, u.app_version,
         u.masked_ip, u.masked_device_id, u.tableoid::regclass::text
  FROM user_logins AS u
  WHERE u.user_id = p_user_id
  ORDER BY u.sent_at, u.message_id
$$;
--> statement-breakpoint
-- Deletes every row of the person (all partitions), then shreds each of their vault values
-- that no other row references; values other people's rows still use are kept (and counted).
CREATE FUNCTION person_erase(p_user_id text)
RETURNS TABLE (rows_deleted bigint, partitions text[], shredded_tokens text[], shredded_fields text[], kept_tokens text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  candidates text[];
BEGIN
  LOCK TABLE pii_vault IN SHARE ROW EXCLUSIVE MODE;
  LOCK TABLE user_logins IN SHARE ROW EXCLUSIVE MODE;
  WITH gone AS (
    DELETE FROM user_logins AS u WHERE u.user_id = p_user_id
    RETURNING u.masked_ip, u.masked_device_id, u.tableoid::regclass::text AS part
  )
  SELECT count(*), coalesce(array_agg(DISTINCT part ORDER BY part), '{}'),
         coalesce((SELECT array_agg(DISTINCT t ORDER BY t) FROM (SELECT masked_ip FROM gone UNION SELECT masked_device_id FROM gone) AS x(t)), '{}')
  INTO rows_deleted, partitions, candidates
  FROM gone;
  SELECT coalesce(array_agg(s.token ORDER BY s.token), '{}'), coalesce(array_agg(s.field ORDER BY s.token), '{}')
  INTO shredded_tokens, shredded_fields
  FROM shred_unreferenced_vault_values(candidates) AS s;
  SELECT coalesce(array_agg(c ORDER BY c), '{}') INTO kept_tokens
  FROM unnest(candidates) AS c
  WHERE c <> ALL (shredded_tokens) AND EXISTS (SELECT 1 FROM pii_vault AS v WHERE v.token = c);
  RETURN NEXT;
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION person_logins(text), person_erase(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION person_logins(text), person_erase(text) TO reveal_api;
--> statement-breakpoint
-- Partitions for last month, this month and the next two, so a fresh database takes rows at
-- once; maintenance keeps PARTITION_MONTHS_AHEAD ready from then on.
SELECT user_logins_prepare_month((date_trunc('month', now() AT TIME ZONE 'UTC') + m * interval '1 month')::date)
FROM generate_series(-1, 2) AS m;
--> statement-breakpoint
-- A small existing table (development, tests) moves now; its months get their partitions.
-- A large one stays for the online move (`npm run db:partition`).
DO $$
BEGIN
  IF (SELECT count(*) FROM (SELECT 1 FROM user_logins_unpartitioned LIMIT 10001) AS s) <= 10000 THEN
    PERFORM user_logins_prepare_month(m::date)
    FROM generate_series(
      (SELECT date_trunc('month', min(create_date)) FROM user_logins_unpartitioned),
      (SELECT date_trunc('month', max(create_date)) FROM user_logins_unpartitioned),
      interval '1 month') AS m;
    INSERT INTO user_logins SELECT * FROM user_logins_unpartitioned ON CONFLICT DO NOTHING;
    DROP TABLE user_logins_unpartitioned;
  ELSE
    GRANT SELECT ON user_logins_unpartitioned TO analyst;
  END IF;
END $$;
