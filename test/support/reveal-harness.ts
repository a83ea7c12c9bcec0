import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Env } from '../../lib/config/env.js';
import { canonicalValue, type PiiField } from '../../lib/crypto/normalize.js';
import { vaultAad } from '../../lib/crypto/vault-context.js';
import { DataKeyRing } from '../../lib/keys/data-key-ring.js';
import { LocalKeyring } from '../../lib/keys/local-keyring.js';
import { loadActiveTokenizer } from '../../lib/keys/token-keys.js';
import { piiVault } from '../../db/schema.js';
import { buildRevealApp, type RevealApp } from '../../services/reveal-api/app.js';
import { ensureLocalSigningKey, LOCAL_AUDIENCE, LOCAL_ISSUER, mintLocalToken, type LocalSigningKey } from '../../lib/auth/local-signing-key.js';
import { loadRevealConfig } from '../../services/reveal-api/config.js';
import type { Database } from '../../db/client.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface SeededValue {
  field: PiiField;
  value: string;
  token: string;
}

export interface RevealHarness {
  testDb: TestDatabase;
  app: RevealApp;
  /** The reveal_api-role pool the app uses. */
  database: Database;
  signingKey: LocalSigningKey;
  /** Every line the app logged, raw JSON. */
  logs: string[];
  keyringMaster: Buffer;
  seed(values: { field: PiiField; value: string }[]): Promise<SeededValue[]>;
  token(sub: string, roles: string[], ttl?: string): Promise<string>;
  /** A fresh app on the same database (other config, e.g. JWKS); `localStack` builds it as `npm start` does. */
  buildApp(env?: Env, options?: { localStack?: boolean }): Promise<RevealApp>;
  close(): Promise<void>;
}

/**
 * The settings a reveal-api built or started outside the harness needs to share its database and
 * trust its tokens: the database, the JWT key, issuer and audience. `masterKeyFile` is the local
 * keyring file (the harness's own app never reads one).
 */
export function harnessSettings(harness: Pick<RevealHarness, 'testDb' | 'signingKey'>, masterKeyFile: string): Record<string, string> {
  return {
    DATABASE_URL: harness.testDb.url,
    LOCAL_MASTER_KEY_FILE: masterKeyFile,
    JWT_PUBLIC_KEY: harness.signingKey.publicKeyPem,
    JWT_ISSUER: LOCAL_ISSUER,
    JWT_AUDIENCE: LOCAL_AUDIENCE,
  };
}

export const SAMPLE_VALUES: { field: PiiField; value: string }[] = [
  { field: 'ip', value: '199.172.111.135' },
  { field: 'device_id', value: '593-47-5928' },
  { field: 'ip', value: '2001:db8:85a3::8a2e:370:7334' },
  { field: 'device_id', value: '104-51-8842' },
];

/**
 * A real reveal app on a fresh migrated database: vault rows are sealed exactly like the
 * ingestor does (DataKeyRing + Tokenizer, as the owner), tokens are minted with a local
 * ES256 key, and logs are captured for leak checks.
 */
export async function startRevealHarness(env: Env = {}, options: { testDb?: TestDatabase } = {}): Promise<RevealHarness> {
  const testDb = options.testDb ?? (await createTestDatabase());
  const keyDir = await mkdtemp(join(tmpdir(), 'tokenvault-reveal-test-'));
  const signingKey = await ensureLocalSigningKey(keyDir);
  const keyringMaster = randomBytes(32);
  const ownerKeys = LocalKeyring.fromKey(Buffer.from(keyringMaster));
  const tokenizer = await loadActiveTokenizer(testDb.owner.db, ownerKeys);
  const ring = new DataKeyRing(testDb.owner.db, ownerKeys, { maxUses: 1_000_000, maxAgeMs: 3_600_000 });
  const logs: string[] = [];
  const opened: RevealApp[] = [];
  // The app's pool, sized like DATABASE_POOL_SIZE would size it in production (default 5 here).
  const database = testDb.as('reveal_api', env.DATABASE_POOL_SIZE === undefined ? 5 : Number(env.DATABASE_POOL_SIZE));
  const appKeys = LocalKeyring.fromKey(Buffer.from(keyringMaster));
  const policyFiles = new Set<string>();

  const buildApp = async (overrides: Env = {}, options: { localStack?: boolean } = {}) => {
    const given = { ...env, ...overrides };
    if (given.POLICY_FILE !== undefined) policyFiles.add(given.POLICY_FILE);
    // One JWT key source at a time (two is a start-up error): the local key unless the test names another.
    const keySource = given.JWT_JWKS_URL !== undefined || given.JWT_SECRET !== undefined ? {} : { JWT_PUBLIC_KEY: signingKey.publicKeyPem };
    const config = loadRevealConfig(
      {
      DATABASE_URL: testDb.url,
      LOCAL_MASTER_KEY_FILE: join(keyDir, 'unused-master.key'),
      ...keySource,
      JWT_ISSUER: LOCAL_ISSUER,
      JWT_AUDIENCE: LOCAL_AUDIENCE,
      LOG_LEVEL: 'info',
      RATE_LIMIT_MAX: '10000',
      RATE_LIMIT_ADDRESS_MAX: '10000',
      ...env,
      ...overrides,
      },
      { localStack: options.localStack === true },
    );
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
        done();
      },
    });
    const app = await buildRevealApp({
      config,
      database,
      keys: appKeys,
      logger: pino({ level: config.logLevel }, stream),
      ...(options.localStack === true ? { localSigningKey: signingKey } : {}),
    });
    opened.push(app);
    return app;
  };

  const app = await buildApp();
  return {
    testDb,
    app,
    database,
    signingKey,
    logs,
    keyringMaster,
    async seed(values) {
      const seeded: SeededValue[] = [];
      for (const { field, value } of values) {
        const canonical = canonicalValue(field, value);
        if (canonical === undefined) throw new Error(`not a valid ${field}`);
        const token = tokenizer.tokenizeCanonical(field, canonical);
        const { dataKeyId, ciphertext } = await ring.encrypt(Buffer.from(canonical, 'utf8'), vaultAad(token));
        await testDb.owner.db
          .insert(piiVault)
          .values({ token, field, ciphertext, dataKeyId, tokenKeyVersion: tokenizer.keyVersion })
          .onConflictDoNothing();
        seeded.push({ field, value: canonical, token });
      }
      return seeded;
    },
    token: (sub, roles, ttl) => mintLocalToken(signingKey, { sub, roles, ...(ttl === undefined ? {} : { ttl }) }),
    buildApp,
    async close() {
      for (const opened_ of opened) await opened_.close();
      await testDb.drop();
      await rm(keyDir, { recursive: true, force: true });
      for (const file of policyFiles) await removePolicyFile(file);
    },
  };
}

export interface AuditRowView {
  seq: number;
  action: string;
  actor: string | null;
  roles: string[];
  outcome: string;
  reason: string | null;
  tokens: string[];
  purpose: string | null;
  ticket: string | null;
  field_counts: Record<string, number>;
  request_id: string | null;
  client_address: string | null;
}

export async function auditRows(testDb: TestDatabase): Promise<AuditRowView[]> {
  const { rows } = await testDb.owner.pool.query<AuditRowView & { seq: string }>(
    'SELECT seq, action, actor, roles, outcome, reason, tokens, purpose, ticket, field_counts, request_id, client_address FROM audit_log ORDER BY seq',
  );
  return rows.map((row) => ({ ...row, seq: Number(row.seq) }));
}

/** Every text column of the audit log (from row `fromSeq` on), concatenated: for "no plaintext anywhere" checks. */
export async function auditText(testDb: TestDatabase, fromSeq = 1): Promise<string> {
  const { rows } = await testDb.owner.pool.query<{ text: string }>('SELECT string_agg(audit_log::text, E\'\\n\') AS text FROM audit_log WHERE seq >= $1', [fromSeq]);
  return rows[0]?.text ?? '';
}

export const PURPOSE = 'fraud investigation case 4711';

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Directories writePolicyFile created and no harness has removed yet. */
const policyDirectories = new Set<string>();

/** Writes a policy document to a temporary file; the harness given it as POLICY_FILE removes it on close(). */
export async function writePolicyFile(document: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tokenvault-policy-'));
  policyDirectories.add(dir);
  const file = join(dir, 'policy.json');
  await writeFile(file, JSON.stringify(document));
  return file;
}

/** Removes a file written by writePolicyFile, with its directory; leaves any other file alone. */
async function removePolicyFile(file: string): Promise<void> {
  const dir = dirname(file);
  if (!policyDirectories.delete(dir)) return;
  await rm(dir, { recursive: true, force: true });
}
