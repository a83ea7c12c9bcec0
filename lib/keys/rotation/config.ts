import { envInt, parseEnv, type Env } from '../../config/env.js';
import { keyProviderRefinement, sharedConfig, sharedEnvSchema, type SharedConfig } from '../../config/shared.js';

/** Every rotation default, once: the env schema and the rotation functions (tests, benchmarks) both use these. */
export const ROTATION_DEFAULTS = { batchSize: 500, kmsConcurrency: 8, settleSeconds: 90 } as const;

/**
 * Settings of the key rotation commands. They run as the database owner (or a role with
 * UPDATE on data_keys/token_keys and write access to pii_vault/user_logins): none of the
 * service roles may rewrite keys.
 */
export const rotationEnvSchema = sharedEnvSchema
  .extend({
    /** Rows per transaction. */
    ROTATION_BATCH_SIZE: envInt(1, 10_000).default(ROTATION_DEFAULTS.batchSize),
    /** Parallel KMS calls while rewrapping (KMS request quotas are per account and region). */
    ROTATION_KMS_CONCURRENCY: envInt(1, 64).default(ROTATION_DEFAULTS.kmsConcurrency),
    /**
     * How long rotate-token-key waits after activating a new version before it deletes old
     * vault rows: every ingestor must have re-read the active version by then, so it must
     * exceed the ingestors' TOKEN_KEY_REFRESH_SECONDS plus the longest ingest batch.
     */
    TOKEN_KEY_SETTLE_SECONDS: envInt(0, 86_400).default(ROTATION_DEFAULTS.settleSeconds),
  })
  .superRefine(keyProviderRefinement);

export interface RotationConfig extends SharedConfig {
  batchSize: number;
  kmsConcurrency: number;
  settleSeconds: number;
}

export function loadRotationConfig(env: Env): RotationConfig {
  const parsed = parseEnv(rotationEnvSchema, env);
  const shared = sharedConfig(parsed);
  return {
    ...shared,
    database: { ...shared.database, poolSize: Math.min(shared.database.poolSize, 4) },
    batchSize: parsed.ROTATION_BATCH_SIZE,
    kmsConcurrency: parsed.ROTATION_KMS_CONCURRENCY,
    settleSeconds: parsed.TOKEN_KEY_SETTLE_SECONDS,
  };
}
