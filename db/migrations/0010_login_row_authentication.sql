-- Row authentication for user_logins (issue 16, finding 11): the database owner could re-point a
-- login (UPDATE user_logins SET masked_ip = <another person's token>) and /persons/access then
-- reported someone else's IP. Each row the ingestor writes now carries an HMAC-SHA256 over its
-- identity and token columns (lib/crypto/login-row-mac.ts), keyed by a key derived from the token
-- key of row_mac_key_version: the database holds that key only wrapped by the KMS, so whoever
-- edits a row cannot make a tag for it. Rows written before this migration keep NULL in both
-- columns and are reported as "unauthenticated: ingested before row authentication".
-- On the partitioned parent, the columns reach every partition (and partitions created later).
ALTER TABLE "user_logins" ADD COLUMN "row_mac" bytea, ADD COLUMN "row_mac_key_version" smallint;
--> statement-breakpoint
-- A pre-partitioning table still being moved (npm run db:partition) gets the same columns at the
-- same place, so the move's INSERT ... SELECT * keeps lining up (its rows are all legacy: NULL).
DO $$
BEGIN
  IF to_regclass('public.user_logins_unpartitioned') IS NOT NULL THEN
    ALTER TABLE user_logins_unpartitioned ADD COLUMN row_mac bytea, ADD COLUMN row_mac_key_version smallint;
  END IF;
END $$;
--> statement-breakpoint
-- person_logins returns what the reveal-api needs to check each row's tag: the covered columns
-- exactly as stored (create_date as YYYY-MM-DD, sent_at in exact milliseconds) and the tag.
DROP FUNCTION person_logins(text);
--> statement-breakpoint
CREATE FUNCTION person_logins(p_user_id text)
RETURNS TABLE (message_id text, user_id text, create_date text, sent_at timestamptz, sent_at_ms numeric, ingested_at timestamptz,
               device_type text, locale text, app_version text, masked_ip text, masked_device_id text,
               row_mac bytea, row_mac_key_version smallint, partition text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT u.message_id, u.user_id, to_char(u.create_date, 'YYYY-MM-DD'), u.sent_at, extract(epoch FROM u.sent_at) * 1000, u.ingested_at,
         u.device_type, u.locale, u.app_version, u.masked_ip, u.masked_device_id,
         u.row_mac, u.row_mac_key_version, u.tableoid::regclass::text
  FROM user_logins AS u
  WHERE u.user_id = p_user_id
  ORDER BY u.sent_at, u.message_id
$$;
--> statement-breakpoint
-- Erasure in two steps inside one transaction, so it never acts on a row whose tag fails:
-- person_erase_begin locks pii_vault then user_logins (the order ingestors and shredding take
-- them, so no row of the person can appear or change until commit) and returns the person's rows;
-- the reveal-api checks each tag; person_erase then deletes only the rows it names (and only
-- those of this user_id) and shreds the values of those rows that no remaining row references.
DROP FUNCTION person_erase(text);
--> statement-breakpoint
CREATE FUNCTION person_erase_begin(p_user_id text)
RETURNS TABLE (message_id text, user_id text, create_date text, sent_at timestamptz, sent_at_ms numeric, ingested_at timestamptz,
               device_type text, locale text, app_version text, masked_ip text, masked_device_id text,
               row_mac bytea, row_mac_key_version smallint, partition text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE pii_vault IN SHARE ROW EXCLUSIVE MODE;
  LOCK TABLE user_logins IN SHARE ROW EXCLUSIVE MODE;
  RETURN QUERY SELECT * FROM person_logins(p_user_id);
END $$;
--> statement-breakpoint
CREATE FUNCTION person_erase(p_user_id text, p_message_ids text[], p_create_dates date[])
RETURNS TABLE (rows_deleted bigint, partitions text[], shredded_tokens text[], shredded_fields text[], kept_tokens text[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  candidates text[];
BEGIN
  LOCK TABLE pii_vault IN SHARE ROW EXCLUSIVE MODE;
  LOCK TABLE user_logins IN SHARE ROW EXCLUSIVE MODE;
  WITH gone AS (
    DELETE FROM user_logins AS u
    USING unnest(p_message_ids, p_create_dates) AS k(message_id, create_date)
    WHERE u.user_id = p_user_id AND u.message_id = k.message_id AND u.create_date = k.create_date
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
REVOKE ALL ON FUNCTION person_logins(text), person_erase_begin(text), person_erase(text, text[], date[]) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION person_logins(text), person_erase_begin(text), person_erase(text, text[], date[]) TO reveal_api;
