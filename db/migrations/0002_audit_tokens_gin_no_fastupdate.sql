-- Audit inserts hold the chain lock: they must not stall merging a GIN pending list (measured
-- 100+ ms p99 with 100-token rows). ALTER instead of drop/create: no rebuild of a large log.
-- The pending list left over is merged by the next VACUUM.
ALTER INDEX "audit_log_tokens_idx" SET (fastupdate = off);
