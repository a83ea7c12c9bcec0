import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { envBool, envInt, envUrl, parseEnv, type Env } from '../../lib/config/env.js';
import { ConfigError } from '../../lib/errors.js';
import { isLoopbackHost } from '../../lib/net/loopback.js';
import { keyProviderRefinement, sharedConfig, sharedEnvSchema, type SharedConfig } from '../../lib/config/shared.js';
import { parseVerifierKey, SignatureType } from '../../lib/audit/note/vkey.js';
import type { AuditSignerConfig } from '../../lib/keys/audit-signer.js';

export const DEFAULT_POLICY_FILE = fileURLToPath(new URL('./policy.default.json', import.meta.url));
/**
 * Where `npm run build` puts the web console: dist/console. From source (tsx) this file is
 * services/reveal-api/config.ts, compiled it is dist/services/reveal-api/config.js.
 */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../../dist/console/' : '../../console/', import.meta.url),
);

/** Asymmetric algorithms accepted by default with a JWKS or a public key. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export const SYMMETRIC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
const KNOWN_ALGORITHMS: readonly string[] = [...ASYMMETRIC_ALGORITHMS, ...SYMMETRIC_ALGORITHMS];

const commaList = z
  .string()
  .transform((value) => value.split(',').map((item) => item.trim()).filter((item) => item.length > 0))
  .pipe(z.array(z.string()).min(1, { message: 'expected a comma-separated list' }));

/** `90`, `90s`, `15m`, `1h` → milliseconds. */
const duration = z
  .string()
  .regex(/^[1-9][0-9]*\s*(ms|s|m|h)?$/, { message: 'expected a duration such as 60s, 1m or 1h' })
  .transform((value) => {
    const match = /^([0-9]+)\s*(ms|s|m|h)?$/.exec(value);
    const amount = Number(match?.[1]);
    const unit = match?.[2] ?? 's';
    return amount * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  });

/** Fastify `trustProxy`: true/false, a hop count, or a comma list of proxy addresses/CIDRs. */
const trustProxy = z.string().transform((value): boolean | number | string[] => {
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  if (/^[0-9]+$/.test(value)) return Number(value);
  return value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
});

/** The settings that each name a way to verify JWTs; exactly one may be set. */
export const JWT_KEY_SOURCES = ['JWT_JWKS_URL', 'JWT_PUBLIC_KEY', 'JWT_SECRET'] as const;

const revealEnvSchemaBase = sharedEnvSchema.extend({
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: envInt(0, 65_535).default(3000),
    /** Least privilege by default: every connection switches to the reveal_api role. */
    DATABASE_ROLE: sharedEnvSchema.shape.DATABASE_ROLE.default('reveal_api'),
    JWT_JWKS_URL: envUrl.optional(),
    JWT_PUBLIC_KEY: z.string().min(1).optional(),
    JWT_SECRET: z.string().min(32, { message: 'expected at least 32 characters (HS256 needs a 256-bit secret)' }).optional(),
    JWT_ISSUER: z.string().min(1),
    JWT_AUDIENCE: commaList,
    JWT_ROLES_CLAIM: z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, { message: 'expected a claim name or dotted path' }).default('roles'),
    JWT_ALGORITHMS: commaList
      .pipe(z.array(z.string().refine((alg) => KNOWN_ALGORITHMS.includes(alg), { message: `expected algorithms among ${KNOWN_ALGORITHMS.join(', ')}` })))
      .optional(),
    /** Leeway for exp/nbf against clock skew between the identity provider and this host: a few seconds, not the token's lifetime. */
    JWT_CLOCK_TOLERANCE_SECONDS: envInt(0, 300).default(5),
    POLICY_FILE: z.string().min(1).default(DEFAULT_POLICY_FILE),
    RATE_LIMIT_MAX: envInt(1, 10_000_000).default(60),
    /** Refusals of requests without valid credentials per client address and window before the address is refused outright (before authentication). */
    RATE_LIMIT_ADDRESS_MAX: envInt(1, 10_000_000).default(60),
    RATE_LIMIT_WINDOW: duration.default(60_000),
    TRUST_PROXY: trustProxy.default(false),
    /** How long an audit write may wait for a lock before the request fails closed with 503. */
    AUDIT_LOCK_TIMEOUT_MS: envInt(10, 60_000).default(5_000),
    BODY_LIMIT_BYTES: envInt(1024, 10 * 1024 * 1024).default(64 * 1024),
    SHUTDOWN_TIMEOUT_SECONDS: envInt(1, 3600).default(10),
    /** AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY) that signs audit checkpoints. */
    AUDIT_SIGNING_KEY_ID: z.string().min(1).optional(),
    /** LOCAL ONLY: a P-256 private key file (created if missing) that signs audit checkpoints. */
    AUDIT_SIGNING_KEY_FILE: z.string().min(1).optional(),
    /** AWS KMS asymmetric key (ECC_NIST_EDWARDS25519, SIGN_VERIFY) that adds an Ed25519 signature to every checkpoint note. */
    AUDIT_ED25519_KEY_ID: z.string().min(1).optional(),
    /** LOCAL ONLY: an Ed25519 private key file (created if missing) that adds an Ed25519 signature to every checkpoint note. */
    AUDIT_ED25519_KEY_FILE: z.string().min(1).optional(),
    /** C2SP tlog-witnesses that cosign every checkpoint (submission prefixes, comma-separated). */
    AUDIT_WITNESS_URLS: commaList.pipe(z.array(envUrl)).optional(),
    /** Their cosignature verifier keys (vkeys, type 0x04), in the same order. */
    AUDIT_WITNESS_KEYS: commaList.optional(),
    AUDIT_WITNESS_TIMEOUT_SECONDS: envInt(1, 120).default(5),
    AUDIT_LOG_ORIGIN: z
      .string()
      .regex(/^[\x21-\x2a\x2c-\x7e]{1,256}$/, { message: 'expected printable ASCII without spaces or "+" (it is the log\'s key name too), e.g. example.com/tokenvault/audit' })
      .default('tokenvault/audit'),
    AUDIT_CHECKPOINT_INTERVAL_SECONDS: envInt(0, 86_400).default(60),
    /** How often the elected replica reconciles budget usage against the audit chain; 0: only when /audit/verify asks. */
    BUDGET_RECONCILE_INTERVAL_SECONDS: envInt(0, 3_600).default(15),
    /** Audit exports (GET /audit/export) running at once per replica; one more answers 429 export_busy. */
    AUDIT_EXPORTS_MAX: envInt(1, 16).default(1),
    /** Rows a second each audit export reads at most (0: unpaced), bounding its share of the database. */
    AUDIT_EXPORT_ROWS_PER_SECOND: envInt(0, 10_000_000).default(5_000),
    AUDIT_CHECKPOINT_FILE: z.string().min(1).optional(),
    AUDIT_CHECKPOINT_LOG: envBool.default(true),
    AUDIT_CHECKPOINT_S3_BUCKET: z.string().min(3).max(63).optional(),
    AUDIT_CHECKPOINT_S3_PREFIX: z.string().max(512).default('audit-checkpoints/'),
    AUDIT_CHECKPOINT_S3_OBJECT_LOCK_MODE: z.enum(['GOVERNANCE', 'COMPLIANCE'], { message: 'expected GOVERNANCE or COMPLIANCE' }).optional(),
    AUDIT_CHECKPOINT_S3_RETENTION_DAYS: envInt(1, 36_500).optional(),
    AUDIT_CHECKPOINT_S3_FORCE_PATH_STYLE: envBool.default(false),
    AWS_ENDPOINT_URL_S3: envUrl.optional(),
    /** The web console under /console (static files built by `npm run build`). */
    CONSOLE_ENABLED: envBool.default(true),
    CONSOLE_DIR: z.string().min(1).default(DEFAULT_CONSOLE_DIR),
    /** The OpenID provider the console signs in with (authorization code + PKCE). */
    CONSOLE_OIDC_ISSUER: envUrl.optional(),
    CONSOLE_OIDC_CLIENT_ID: z.string().min(1).max(256).optional(),
    CONSOLE_OIDC_SCOPE: z.string().min(1).default('openid'),
    /** RFC 8707 resource indicator, for providers that issue JWT access tokens per resource. */
    CONSOLE_OIDC_RESOURCE: envUrl.optional(),
    /** Seconds a revealed value stays on screen before the console clears it. */
    CONSOLE_REVEAL_CLEAR_SECONDS: envInt(5, 3600).default(60),
    /** Only the local stack may turn this on (see loadRevealConfig's `localStack`). */
    CONSOLE_LOCAL_SIGN_IN: envBool.default(false),
    /** Optional: new reveal requests waiting for approval are POSTed here (id, requester, purpose; never values). */
    APPROVAL_WEBHOOK_URL: envUrl.optional(),
  });

export const revealEnvSchema = revealEnvSchemaBase
  .superRefine(keyProviderRefinement)
  .superRefine((env, ctx) => auditCheckpointRefinement(env, ctx))
  .superRefine((env, ctx) => {
    if (env.JWT_JWKS_URL === undefined && env.JWT_PUBLIC_KEY === undefined && env.JWT_SECRET === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_JWKS_URL'],
        message: 'set JWT_JWKS_URL (your identity provider), JWT_PUBLIC_KEY (PEM or JWK) or, for local use only, JWT_SECRET',
      });
    }
    const sources = JWT_KEY_SOURCES.filter((name) => env[name] !== undefined);
    if (sources.length > 1) {
      // Silently preferring one would verify against a key the operator did not mean.
      ctx.addIssue({ code: 'custom', path: [sources[1] ?? 'JWT_SECRET'], message: `${sources.join(' and ')} are set together: set exactly one JWT key source` });
    }
    const asymmetric = env.JWT_JWKS_URL !== undefined || env.JWT_PUBLIC_KEY !== undefined;
    const symmetricAllowed = env.JWT_ALGORITHMS?.filter((alg) => alg.startsWith('HS')) ?? [];
    if (asymmetric && symmetricAllowed.length > 0) {
      // HS/RS confusion: with a public key configured, an HS* token "signed" with that public key must never verify.
      ctx.addIssue({ code: 'custom', path: ['JWT_ALGORITHMS'], message: `${symmetricAllowed.join(', ')} cannot be used with a JWKS or public key` });
    }
    if (!asymmetric && env.JWT_ALGORITHMS !== undefined && env.JWT_ALGORITHMS.some((alg) => !alg.startsWith('HS'))) {
      ctx.addIssue({ code: 'custom', path: ['JWT_ALGORITHMS'], message: 'with JWT_SECRET only HS256, HS384 or HS512 can be allowed' });
    }
  });

const auditCheckpointRefinement = (env: z.infer<typeof revealEnvSchemaBase>, ctx: z.RefinementCtx): void => {
  if (env.AUDIT_SIGNING_KEY_ID !== undefined && env.AUDIT_SIGNING_KEY_FILE !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_SIGNING_KEY_ID'], message: 'set AUDIT_SIGNING_KEY_ID or AUDIT_SIGNING_KEY_FILE, not both' });
  }
  const signing = env.AUDIT_SIGNING_KEY_ID !== undefined || env.AUDIT_SIGNING_KEY_FILE !== undefined;
  for (const name of ['AUDIT_CHECKPOINT_FILE', 'AUDIT_CHECKPOINT_S3_BUCKET'] as const) {
    if (!signing && env[name] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'needs a signing key: set AUDIT_SIGNING_KEY_ID (AWS KMS) or, for local use only, AUDIT_SIGNING_KEY_FILE' });
    }
  }
  if (env.AUDIT_ED25519_KEY_ID !== undefined && env.AUDIT_ED25519_KEY_FILE !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_ED25519_KEY_ID'], message: 'set AUDIT_ED25519_KEY_ID or AUDIT_ED25519_KEY_FILE, not both' });
  }
  for (const name of ['AUDIT_ED25519_KEY_ID', 'AUDIT_ED25519_KEY_FILE', 'AUDIT_WITNESS_URLS'] as const) {
    if (!signing && env[name] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'needs the checkpoint signing key: set AUDIT_SIGNING_KEY_ID (AWS KMS) or, for local use only, AUDIT_SIGNING_KEY_FILE' });
    }
  }
  const urls = env.AUDIT_WITNESS_URLS ?? [];
  const keys = env.AUDIT_WITNESS_KEYS ?? [];
  if (urls.length !== keys.length) {
    ctx.addIssue({
      code: 'custom',
      path: [urls.length > keys.length ? 'AUDIT_WITNESS_KEYS' : 'AUDIT_WITNESS_URLS'],
      message: `AUDIT_WITNESS_URLS and AUDIT_WITNESS_KEYS pair up in order: ${urls.length} URL(s), ${keys.length} key(s) (each witness's vkey, e.g. the .vkey file npm run witness writes)`,
    });
  }
  for (const [position, vkey] of keys.entries()) {
    try {
      const verifier = parseVerifierKey(vkey);
      if (verifier.type !== SignatureType.CosignatureV1) throw new Error('not a cosignature key (type 0x04): a witness\'s vkey is written by npm run witness to <WITNESS_KEY_FILE>.vkey');
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['AUDIT_WITNESS_KEYS'], message: `key ${position + 1}: ${(error as Error).message}` });
    }
  }
  if ((env.AUDIT_CHECKPOINT_S3_OBJECT_LOCK_MODE === undefined) !== (env.AUDIT_CHECKPOINT_S3_RETENTION_DAYS === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['AUDIT_CHECKPOINT_S3_OBJECT_LOCK_MODE'], message: 'set AUDIT_CHECKPOINT_S3_OBJECT_LOCK_MODE and AUDIT_CHECKPOINT_S3_RETENTION_DAYS together' });
  }
};

export interface ConsoleConfig {
  enabled: boolean;
  dir: string;
  oidc: { issuer: string; clientId: string; scope: string; resource: string | undefined } | undefined;
  revealClearSeconds: number;
  /** Mint tokens for a chosen role without an identity provider: `npm start` only. */
  localSignIn: boolean;
}

export type JwtKeySource = { kind: 'jwks'; url: string } | { kind: 'public-key'; key: string } | { kind: 'secret'; secret: string };

export interface JwtConfig {
  /** The one key source used, by preference: JWKS, then public key, then shared secret. */
  source: JwtKeySource;
  issuer: string;
  audience: string[];
  rolesClaim: string;
  /** Explicit allow-list, or undefined to derive it from the key source. */
  algorithms: string[] | undefined;
  clockToleranceSeconds: number;
}

export interface RevealConfig extends SharedConfig {
  host: string;
  port: number;
  jwt: JwtConfig;
  policyFile: string;
  /** max: requests per subject per window; addressMax: refusals without valid credentials per client address per window. */
  rateLimit: { max: number; addressMax: number; windowMs: number };
  trustProxy: boolean | number | string[];
  bodyLimitBytes: number;
  auditLockTimeoutMs: number;
  /** 0: budget usage is reconciled against the audit chain only on demand (GET /audit/verify). */
  budgetReconcileIntervalMs: number;
  /** Audit exports running at once in this replica (each a low-priority process with its own connection). */
  auditExportsMax: number;
  /** Rows a second each audit export reads at most (0: unpaced). */
  auditExportRowsPerSecond: number;
  shutdownTimeoutMs: number;
  console: ConsoleConfig;
  approvalWebhookUrl: string | undefined;
  /** Signed checkpoints of the audit chain; undefined when no signing key is configured. */
  auditCheckpoints: AuditCheckpointConfig | undefined;
}

export interface AuditCheckpointConfig {
  signer: AuditSignerConfig;
  /** The second signature on every note (Ed25519: what C2SP witnesses and tools expect), when configured. */
  ed25519: AuditSignerConfig | undefined;
  /** Witnesses that cosign each checkpoint: submission URL and cosignature vkey. */
  witnesses: { url: string; vkey: string }[];
  witnessTimeoutMs: number;
  origin: string;
  intervalMs: number;
  file: string | undefined;
  log: boolean;
  s3:
    | {
        bucket: string;
        prefix: string;
        region: string;
        endpoint: string | undefined;
        forcePathStyle: boolean;
        objectLock: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number } | undefined;
      }
    | undefined;
}

export interface LoadRevealConfigOptions {
  /**
   * Set by the local stack (`npm start`) only. Containers run main.ts, which never sets it,
   * so CONSOLE_LOCAL_SIGN_IN there stops the process instead of minting tokens for anyone.
   */
  localStack?: boolean;
}

export function loadRevealConfig(env: Env, options: LoadRevealConfigOptions = {}): RevealConfig {
  const parsed = parseEnv(revealEnvSchema, env);
  if (parsed.CONSOLE_LOCAL_SIGN_IN && options.localStack !== true) {
    throw new ConfigError(
      'Invalid configuration:\n  CONSOLE_LOCAL_SIGN_IN: local sign-in mints tokens for any role and exists only in the local stack (npm start); sign in through your identity provider (CONSOLE_OIDC_ISSUER)',
      ['CONSOLE_LOCAL_SIGN_IN'],
    );
  }
  if (parsed.CONSOLE_LOCAL_SIGN_IN && !isLoopbackHost(parsed.HOST)) {
    // Anyone who reaches the listener would get a token for any role: loopback only.
    throw new ConfigError(
      `Invalid configuration:\n  CONSOLE_LOCAL_SIGN_IN: the local sign-in exists only on a loopback listener, and HOST=${parsed.HOST} can be reached from the network; ` +
        'set HOST=127.0.0.1 (reach it from elsewhere through an SSH tunnel) or sign in through your identity provider (CONSOLE_OIDC_ISSUER)',
      ['CONSOLE_LOCAL_SIGN_IN', 'HOST'],
    );
  }
  if ((parsed.CONSOLE_OIDC_ISSUER === undefined) !== (parsed.CONSOLE_OIDC_CLIENT_ID === undefined)) {
    const missing = parsed.CONSOLE_OIDC_ISSUER === undefined ? 'CONSOLE_OIDC_ISSUER' : 'CONSOLE_OIDC_CLIENT_ID';
    throw new ConfigError(`Invalid configuration:\n  ${missing}: is required but not set (the console's OpenID sign-in needs both CONSOLE_OIDC_ISSUER and CONSOLE_OIDC_CLIENT_ID)`, [missing]);
  }
  return {
    host: parsed.HOST,
    port: parsed.PORT,
    ...sharedConfig(parsed),
    jwt: {
      source: jwtKeySource(parsed),
      issuer: parsed.JWT_ISSUER,
      audience: parsed.JWT_AUDIENCE,
      rolesClaim: parsed.JWT_ROLES_CLAIM,
      algorithms: parsed.JWT_ALGORITHMS,
      clockToleranceSeconds: parsed.JWT_CLOCK_TOLERANCE_SECONDS,
    },
    policyFile: parsed.POLICY_FILE,
    rateLimit: { max: parsed.RATE_LIMIT_MAX, addressMax: parsed.RATE_LIMIT_ADDRESS_MAX, windowMs: parsed.RATE_LIMIT_WINDOW },
    trustProxy: parsed.TRUST_PROXY,
    bodyLimitBytes: parsed.BODY_LIMIT_BYTES,
    auditLockTimeoutMs: parsed.AUDIT_LOCK_TIMEOUT_MS,
    budgetReconcileIntervalMs: parsed.BUDGET_RECONCILE_INTERVAL_SECONDS * 1000,
    auditExportsMax: parsed.AUDIT_EXPORTS_MAX,
    auditExportRowsPerSecond: parsed.AUDIT_EXPORT_ROWS_PER_SECOND,
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_SECONDS * 1000,
    console: {
      enabled: parsed.CONSOLE_ENABLED,
      dir: parsed.CONSOLE_DIR,
      oidc:
        parsed.CONSOLE_OIDC_ISSUER === undefined || parsed.CONSOLE_OIDC_CLIENT_ID === undefined
          ? undefined
          : { issuer: parsed.CONSOLE_OIDC_ISSUER, clientId: parsed.CONSOLE_OIDC_CLIENT_ID, scope: parsed.CONSOLE_OIDC_SCOPE, resource: parsed.CONSOLE_OIDC_RESOURCE },
      revealClearSeconds: parsed.CONSOLE_REVEAL_CLEAR_SECONDS,
      localSignIn: parsed.CONSOLE_LOCAL_SIGN_IN,
    },
    approvalWebhookUrl: parsed.APPROVAL_WEBHOOK_URL,
    auditCheckpoints: auditCheckpointConfig(parsed),
  };
}

function auditCheckpointConfig(env: z.infer<typeof revealEnvSchema>): AuditCheckpointConfig | undefined {
  const signer: AuditSignerConfig | undefined =
    env.AUDIT_SIGNING_KEY_ID !== undefined
      ? { kind: 'aws-kms', keyId: env.AUDIT_SIGNING_KEY_ID, region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL_KMS ?? env.AWS_ENDPOINT_URL }
      : env.AUDIT_SIGNING_KEY_FILE !== undefined
        ? { kind: 'local', file: env.AUDIT_SIGNING_KEY_FILE }
        : undefined;
  if (signer === undefined) return undefined;
  const lockMode = env.AUDIT_CHECKPOINT_S3_OBJECT_LOCK_MODE;
  const lockDays = env.AUDIT_CHECKPOINT_S3_RETENTION_DAYS;
  const ed25519: AuditSignerConfig | undefined =
    env.AUDIT_ED25519_KEY_ID !== undefined
      ? { kind: 'aws-kms', keyId: env.AUDIT_ED25519_KEY_ID, region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL_KMS ?? env.AWS_ENDPOINT_URL }
      : env.AUDIT_ED25519_KEY_FILE !== undefined
        ? { kind: 'local', file: env.AUDIT_ED25519_KEY_FILE }
        : undefined;
  const keys = env.AUDIT_WITNESS_KEYS ?? [];
  return {
    signer,
    ed25519,
    witnesses: (env.AUDIT_WITNESS_URLS ?? []).map((url, position) => ({ url, vkey: keys[position] ?? '' })),
    witnessTimeoutMs: env.AUDIT_WITNESS_TIMEOUT_SECONDS * 1000,
    origin: env.AUDIT_LOG_ORIGIN,
    intervalMs: env.AUDIT_CHECKPOINT_INTERVAL_SECONDS * 1000,
    file: env.AUDIT_CHECKPOINT_FILE,
    log: env.AUDIT_CHECKPOINT_LOG,
    s3:
      env.AUDIT_CHECKPOINT_S3_BUCKET === undefined
        ? undefined
        : {
            bucket: env.AUDIT_CHECKPOINT_S3_BUCKET,
            prefix: env.AUDIT_CHECKPOINT_S3_PREFIX,
            region: env.AWS_REGION,
            endpoint: env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL,
            forcePathStyle: env.AUDIT_CHECKPOINT_S3_FORCE_PATH_STYLE,
            objectLock: lockMode === undefined || lockDays === undefined ? undefined : { mode: lockMode, days: lockDays },
          },
  };
}

function jwtKeySource(env: z.infer<typeof revealEnvSchema>): JwtKeySource {
  if (env.JWT_JWKS_URL !== undefined) return { kind: 'jwks', url: env.JWT_JWKS_URL };
  if (env.JWT_PUBLIC_KEY !== undefined) return { kind: 'public-key', key: env.JWT_PUBLIC_KEY };
  // The refinement guarantees one of the three is set.
  return { kind: 'secret', secret: env.JWT_SECRET ?? '' };
}
