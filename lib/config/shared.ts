import { z } from 'zod';
import type { DatabaseConfig } from '../../db/client.js';
import { envInt, envUrl, logLevel } from './env.js';

/** Data-key rotation defaults (DATA_KEY_MAX_USES, DATA_KEY_MAX_AGE_SECONDS), also used when no config is passed. */
export const DEFAULT_DATA_KEY_POLICY = { maxUses: 1_000_000, maxAgeMs: 24 * 3600 * 1000 } as const;

/** Settings both services share. Each service extends this with its own. */
export const sharedEnvSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// or postgresql:// connection URL' }),
  /** Role the service switches to on every connection (least privilege when it logs in as the owner). */
  DATABASE_ROLE: z.string().regex(/^[a-z_][a-z0-9_]*$/, { message: 'expected a PostgreSQL role name' }).optional(),
  DATABASE_POOL_SIZE: envInt(1, 200).default(10),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  AWS_ENDPOINT_URL: envUrl.optional(),
  AWS_ENDPOINT_URL_KMS: envUrl.optional(),
  KMS_KEY_ID: z.string().min(1).optional(),
  LOCAL_MASTER_KEY_FILE: z.string().min(1).optional(),
  DATA_KEY_MAX_USES: envInt(1, 2 ** 32).default(DEFAULT_DATA_KEY_POLICY.maxUses),
  DATA_KEY_MAX_AGE_SECONDS: envInt(1, 365 * 24 * 3600).default(DEFAULT_DATA_KEY_POLICY.maxAgeMs / 1000),
  LOG_LEVEL: logLevel,
});

export type SharedEnv = z.infer<typeof sharedEnvSchema>;

export type KeyProviderConfig =
  | {
      kind: 'aws-kms';
      keyId: string;
      region: string;
      endpoint: string | undefined;
      /** Only for local emulators; production uses the SDK's default credential chain. */
      credentials?: { accessKeyId: string; secretAccessKey: string };
    }
  | { kind: 'local'; file: string };

export type { DatabaseConfig } from '../../db/client.js';

export interface DataKeyPolicy {
  maxUses: number;
  maxAgeMs: number;
}

export const keyProviderRefinement = (env: SharedEnv, ctx: z.RefinementCtx): void => {
  if (env.KMS_KEY_ID === undefined && env.LOCAL_MASTER_KEY_FILE === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['KMS_KEY_ID'],
      message: 'set KMS_KEY_ID (an AWS KMS key id, ARN or alias/...) or, for local development only, LOCAL_MASTER_KEY_FILE',
    });
  }
};

export function keyProviderConfig(env: SharedEnv): KeyProviderConfig {
  if (env.KMS_KEY_ID !== undefined) {
    return {
      kind: 'aws-kms',
      keyId: env.KMS_KEY_ID,
      region: env.AWS_REGION,
      endpoint: env.AWS_ENDPOINT_URL_KMS ?? env.AWS_ENDPOINT_URL,
    };
  }
  // keyProviderRefinement guarantees one of the two is set.
  return { kind: 'local', file: env.LOCAL_MASTER_KEY_FILE ?? '' };
}

export function databaseConfig(env: SharedEnv): DatabaseConfig {
  return { url: env.DATABASE_URL, role: env.DATABASE_ROLE, poolSize: env.DATABASE_POOL_SIZE };
}

export function dataKeyPolicy(env: SharedEnv): DataKeyPolicy {
  return { maxUses: env.DATA_KEY_MAX_USES, maxAgeMs: env.DATA_KEY_MAX_AGE_SECONDS * 1000 };
}

export interface SharedConfig {
  database: DatabaseConfig;
  keyProvider: KeyProviderConfig;
  dataKeyPolicy: DataKeyPolicy;
  logLevel: SharedEnv['LOG_LEVEL'];
}

/** The typed settings every process shares, from an environment validated with sharedEnvSchema (extended). */
export function sharedConfig(env: SharedEnv): SharedConfig {
  return { database: databaseConfig(env), keyProvider: keyProviderConfig(env), dataKeyPolicy: dataKeyPolicy(env), logLevel: env.LOG_LEVEL };
}
