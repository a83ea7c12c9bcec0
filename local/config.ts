import { resolve } from 'node:path';
import { z } from 'zod';
import { envInt, envUrl, parseEnv, type Env } from '../lib/config/env.js';
import { DEFAULT_POLICY_FILE } from '../services/reveal-api/index.js';

/**
 * Settings of the one-command local stack (`npm start`). Every part runs embedded unless
 * its real counterpart is configured: DATABASE_URL, SQS_QUEUE_URL, KMS_KEY_ID.
 */
export const localEnvSchema = z.object({
  TOKENVAULT_DATA_DIR: z.string().min(1).default('.data'),
  LOCAL_POSTGRES_PORT: envInt(1, 65_535).default(5433),
  LOCAL_SQS_PORT: envInt(1, 65_535).default(4566),
  /** The local witness (npm run witness) that cosigns the audit checkpoints. */
  LOCAL_WITNESS_PORT: envInt(1, 65_535).default(3090),
  PORT: envInt(0, 65_535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: envInt(0, 65_535).default(9464),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  POLICY_FILE: z.string().min(1).default(DEFAULT_POLICY_FILE),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { message: 'expected a postgres:// connection URL' }).optional(),
  SQS_QUEUE_URL: envUrl.optional(),
  KMS_KEY_ID: z.string().min(1).optional(),
});

export type LocalEnv = z.infer<typeof localEnvSchema>;

export interface LocalConfig {
  dataDir: string;
  postgresPort: number;
  sqsPort: number;
  witnessPort: number;
  revealPort: number;
  /** The reveal API's listen address; the console's local sign-in exists only when it is loopback. */
  revealHost: string;
  metricsPort: number;
  metricsHost: string;
  policyFile: string;
  /** Real services that replace an embedded part. */
  external: { databaseUrl?: string; queueUrl?: string; kmsKeyId?: string };
  /** The full environment, passed on to the services' own config loaders. */
  env: Env;
}

export function loadLocalConfig(env: Env): LocalConfig {
  const parsed = parseEnv(localEnvSchema, env);
  return {
    dataDir: resolve(parsed.TOKENVAULT_DATA_DIR),
    postgresPort: parsed.LOCAL_POSTGRES_PORT,
    sqsPort: parsed.LOCAL_SQS_PORT,
    witnessPort: parsed.LOCAL_WITNESS_PORT,
    revealPort: parsed.PORT,
    revealHost: parsed.HOST,
    metricsPort: parsed.METRICS_PORT,
    metricsHost: parsed.METRICS_HOST,
    policyFile: parsed.POLICY_FILE,
    external: {
      ...(parsed.DATABASE_URL === undefined ? {} : { databaseUrl: parsed.DATABASE_URL }),
      ...(parsed.SQS_QUEUE_URL === undefined ? {} : { queueUrl: parsed.SQS_QUEUE_URL }),
      ...(parsed.KMS_KEY_ID === undefined ? {} : { kmsKeyId: parsed.KMS_KEY_ID }),
    },
    env,
  };
}
