import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { NoteError } from '../../lib/audit/note/errors.js';
import { isValidKeyName } from '../../lib/audit/note/signed-note.js';
import { parseVerifierKey, SignatureType, type NoteVerifier } from '../../lib/audit/note/vkey.js';
import { envInt, logLevel, parseEnv, type Env } from '../../lib/config/env.js';
import { ConfigError } from '../../lib/errors.js';

export const witnessEnvSchema = z.object({
  WITNESS_HOST: z.string().min(1).default('127.0.0.1'),
  WITNESS_PORT: envInt(0, 65_535).default(3090),
  /** The witness's name: the key name of its cosignatures (a schema-less URL, e.g. witness.example.com/w1). */
  WITNESS_NAME: z.string().refine(isValidKeyName, { message: 'expected a key name without spaces or "+", e.g. witness.example.com/w1' }).default('localhost/tokenvault-witness'),
  /** Where the witness keeps its state (one file per log) and, by default, its key. */
  WITNESS_DATA_DIR: z.string().min(1).default('.data/witness'),
  /** The Ed25519 cosigning key (PKCS#8 PEM, created 0600 on first start). */
  WITNESS_KEY_FILE: z.string().min(1).optional(),
  /** Trusted log keys as vkeys, comma-separated; each key's name is the origin it signs for. */
  WITNESS_LOG_KEYS: z.string().min(1).optional(),
  /** A JSON file {"logs":[{"origin":"…","keys":["vkey",…]}]}, for origins that differ from key names. */
  WITNESS_LOGS_FILE: z.string().min(1).optional(),
  WITNESS_BODY_LIMIT_BYTES: envInt(1024, 1024 * 1024).default(64 * 1024),
  LOG_LEVEL: logLevel,
});

export interface WitnessConfig {
  host: string;
  port: number;
  name: string;
  dataDir: string;
  keyFile: string;
  logs: Map<string, NoteVerifier[]>;
  bodyLimitBytes: number;
  logLevel: z.infer<typeof witnessEnvSchema>['LOG_LEVEL'];
}

const logsFileSchema = z.object({ logs: z.array(z.object({ origin: z.string().min(1), keys: z.array(z.string()).min(1) }).strict()).min(1) }).strict();

/** Reads and checks the witness settings once; a missing or invalid one stops the process, named. */
export function loadWitnessConfig(env: Env): WitnessConfig {
  const parsed = parseEnv(witnessEnvSchema, env);
  const logs = new Map<string, NoteVerifier[]>();
  const add = (origin: string, vkey: string, setting: string) => {
    let verifier: NoteVerifier;
    try {
      verifier = parseVerifierKey(vkey);
    } catch (error) {
      throw new ConfigError(`Invalid configuration:\n  ${setting}: ${vkey.split('+')[0]}: ${error instanceof NoteError ? error.message : String(error)}`, [setting]);
    }
    if (verifier.type === SignatureType.CosignatureV1) {
      throw new ConfigError(`Invalid configuration:\n  ${setting}: ${verifier.name} is a cosignature key; a log signs with an Ed25519 (0x01) or ECDSA (0x02) key`, [setting]);
    }
    logs.set(origin, [...(logs.get(origin) ?? []), verifier]);
  };
  if (parsed.WITNESS_LOG_KEYS !== undefined) {
    for (const vkey of parsed.WITNESS_LOG_KEYS.split(',').map((item) => item.trim()).filter((item) => item.length > 0)) add(vkey.split('+')[0] ?? '', vkey, 'WITNESS_LOG_KEYS');
  }
  if (parsed.WITNESS_LOGS_FILE !== undefined) {
    let file: z.infer<typeof logsFileSchema>;
    try {
      file = logsFileSchema.parse(JSON.parse(readFileSync(parsed.WITNESS_LOGS_FILE, 'utf8')));
    } catch (error) {
      const reason = error instanceof z.ZodError ? error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ') : (error as Error).message;
      throw new ConfigError(`Invalid configuration:\n  WITNESS_LOGS_FILE: ${parsed.WITNESS_LOGS_FILE}: ${reason}`, ['WITNESS_LOGS_FILE']);
    }
    for (const log of file.logs) for (const vkey of log.keys) add(log.origin, vkey, 'WITNESS_LOGS_FILE');
  }
  if (logs.size === 0) {
    throw new ConfigError(
      'Invalid configuration:\n  WITNESS_LOG_KEYS: is required but not set (the vkeys of the logs this witness follows), or set WITNESS_LOGS_FILE',
      ['WITNESS_LOG_KEYS', 'WITNESS_LOGS_FILE'],
    );
  }
  return {
    host: parsed.WITNESS_HOST,
    port: parsed.WITNESS_PORT,
    name: parsed.WITNESS_NAME,
    dataDir: parsed.WITNESS_DATA_DIR,
    keyFile: parsed.WITNESS_KEY_FILE ?? join(parsed.WITNESS_DATA_DIR, 'witness-key.pem'),
    logs,
    bodyLimitBytes: parsed.WITNESS_BODY_LIMIT_BYTES,
    logLevel: parsed.LOG_LEVEL,
  };
}
