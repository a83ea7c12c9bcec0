import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SQSClient } from '@aws-sdk/client-sqs';
import pino, { type Logger } from 'pino';
import type { Database } from '../db/client.js';
import { processEnv } from '../lib/config/env.js';
import { ConfigError } from '../lib/errors.js';
import { loadActiveTokenizer } from '../lib/keys/token-keys.js';
import { DatabaseUnreachableError, openDatabase } from '../lib/runtime/database.js';
import { KeysUnusableError, openKeys } from '../lib/runtime/keys.js';
import { migrate } from '../lib/runtime/migrate.js';
import { loadIngestorConfig, metricsListenTarget, sqsClientFor, startIngestor, type Ingestor } from '../services/ingestor/index.js';
import {
  createNoteSigners,
  FileCheckpointSink,
  loadRevealConfig,
  Policy,
  revealListenTarget,
  startRevealApi,
  type RevealConfig,
} from '../services/reveal-api/index.js';
import { LocalAuditSigner } from '../lib/keys/local-audit-signer.js';
import { startLocalWitness, type LocalWitness } from './witness.js';
import { nodeRuntime, quietSdkNodeVersionWarning, SUPPORTED_NODE_LINES } from '../lib/config/node-runtime.js';
import { describeBusyPorts, describeListenFailure, type ListenTarget } from '../lib/net/listen-errors.js';
import { isLoopbackHost } from '../lib/net/loopback.js';
import { ensureLocalSigningKey, LOCAL_AUDIENCE, LOCAL_ISSUER, mintLocalToken, type LocalSigningKey } from '../lib/auth/local-signing-key.js';
import { ensureConsoleBuilt } from './console-build.js';
import { loadLocalConfig, type LocalConfig } from './config.js';
import { isEmbeddedPostgresUrl, PostgresAlreadyRunningError, PostgresPortInUseError, PostgresUserError, startEmbeddedPostgres } from './embedded-postgres.js';
import { busyPorts } from './ports.js';
import { startEmbeddedSqs } from './embedded-sqs.js';
import { userJwtKeySetting } from './identity.js';
import { AlreadyRunningError, claimDataDir } from './instance.js';
import { createLoginQueues, queueDepth, sendLines } from './queues.js';
import { missingReferenceLines } from './reference-data.js';
import { createShutdown } from './shutdown.js';

const REFERENCE_DATA = fileURLToPath(new URL('../data/login-queue.sample.jsonl', import.meta.url));
const LOCAL_AWS_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

const say = (line: string): void => console.log(line);
/** Everything started so far, closed in reverse order on Ctrl-C, SIGTERM or a failed start. */
const shutdown = createShutdown({ say });

/**
 * `npm start`: the whole system on one machine with nothing installed but Node.js.
 * Embedded PostgreSQL, an SQS-protocol server and a local keyring stand in for RDS, SQS and
 * KMS unless DATABASE_URL, SQS_QUEUE_URL or KMS_KEY_ID point at the real thing.
 */
async function main(): Promise<void> {
  shutdown.install();
  say('tokenvault local stack');
  const runtime = nodeRuntime();
  if (!runtime.supported) {
    quietSdkNodeVersionWarning();
    say(`  node          ${runtime.version} is not supported (end of life): tokenvault supports Node.js ${SUPPORTED_NODE_LINES}; it may run, but upgrade`);
  }
  const config = loadLocalConfig(processEnv());
  const jwtKeySetting = userJwtKeySetting(config.env);
  await mkdir(config.dataDir, { recursive: true });
  const claim = await claimDataDir(config.dataDir);
  shutdown.add(() => claim.release(), { essential: true });
  // Before anything starts: a busy port or a policy typo stops the start in a second, naming the setting.
  const busy = await busyPorts(listenTargets(config));
  if (busy.length > 0) throw new StartError(describeBusyPorts(busy));
  await Policy.load(config.policyFile);
  const logger = pino({ level: config.env.LOG_LEVEL ?? 'warn', base: { service: 'local-stack' } });
  // Services log JSON at LOG_LEVEL (default warn here, so the progress lines below stay readable).

  const databaseUrl = await startDatabase(config);
  const owner = await openOwner(databaseUrl, config.external.databaseUrl !== undefined, logger);
  shutdown.add(() => owner.close());
  // With an existing .data log from before migration 0011: its Merkle tree, before any service appends.
  await migrate(owner);
  say('  migrations    applied (schema, roles ingestor/reveal_api/analyst/auditor, audit triggers, audit Merkle tree)');

  const keyEnv = config.external.kmsKeyId === undefined ? { LOCAL_MASTER_KEY_FILE: join(config.dataDir, 'master.key') } : {};
  const sqsSetup = await startQueue(config, owner);

  const ingestorConfig = loadIngestorConfig({
    ...config.env,
    ...keyEnv,
    DATABASE_URL: databaseUrl,
    DATABASE_ROLE: config.env.DATABASE_ROLE ?? 'ingestor',
    SQS_QUEUE_URL: sqsSetup.queueUrl,
    ...(sqsSetup.endpoint === undefined ? {} : { AWS_ENDPOINT_URL_SQS: sqsSetup.endpoint }),
    SQS_WAIT_TIME_SECONDS: config.env.SQS_WAIT_TIME_SECONDS ?? '2',
    METRICS_PORT: String(config.metricsPort),
  });
  const keys = await openKeys(ingestorConfig.keyProvider, { check: true }).catch((error: unknown) => {
    throw error instanceof KeysUnusableError ? new StartError(error.message, error.cause) : error;
  });
  shutdown.add(() => keys.close());
  // Create the token key as the owner, before least-privilege services race for it.
  await loadActiveTokenizer(owner.db, keys);
  say(`  keys          ${keys.description}`);

  // Any key source the user set replaces the local identity provider (.data/jwt, npm run token).
  const signingKey = jwtKeySetting === undefined ? await ensureLocalSigningKey(join(config.dataDir, 'jwt')) : undefined;
  const revealEnv = {
    ...config.env,
    ...keyEnv,
    DATABASE_URL: databaseUrl,
    PORT: String(config.revealPort),
    HOST: config.revealHost,
    ...(signingKey === undefined ? {} : { JWT_PUBLIC_KEY: signingKey.publicKeyPem }),
    JWT_ISSUER: config.env.JWT_ISSUER ?? LOCAL_ISSUER,
    JWT_AUDIENCE: config.env.JWT_AUDIENCE ?? LOCAL_AUDIENCE,
    ...auditCheckpointEnv(config),
    // The console's local sign-in mints tokens with the local signing key: only when that key is the
    // one trusted, and only on a loopback listener (anyone who reaches it gets a token for any role).
    CONSOLE_LOCAL_SIGN_IN: config.env.CONSOLE_LOCAL_SIGN_IN ?? String(signingKey !== undefined && isLoopbackHost(config.revealHost)),
  };
  const witness = await startWitness(config, loadRevealConfig(revealEnv, { localStack: true }));
  const revealConfig = loadRevealConfig(
    { ...revealEnv, ...(witness === undefined ? {} : { AUDIT_WITNESS_URLS: witness.url, AUDIT_WITNESS_KEYS: witness.vkey }) },
    { localStack: true },
  );
  if (revealConfig.console.enabled && (await ensureConsoleBuilt(revealConfig.console.dir))) {
    say(`  console       built into ${revealConfig.console.dir}`);
  }
  const revealDatabase = await openDatabase(revealConfig.database, { applicationName: 'tokenvault-reveal-api', logger });
  shutdown.add(() => revealDatabase.close());
  // The same composition as the reveal-api container (services/reveal-api/main.ts), from the same config.
  const app = await startRevealApi(revealConfig, {
    database: revealDatabase,
    keys,
    logger: logger.child({ service: 'reveal-api' }),
    ...(revealConfig.console.localSignIn && signingKey !== undefined ? { localSigningKey: signingKey } : {}),
  }).catch((error: unknown) => {
    throw listenError(error, revealListenTarget(revealConfig));
  });
  shutdown.add(() => app.close());
  const revealUrl = `http://${revealConfig.host.includes(':') ? `[${revealConfig.host}]` : revealConfig.host}:${revealConfig.port}`;
  say(`  reveal-api    ${revealUrl}  (index at /, OpenAPI docs at /docs)`);
  say(
    signingKey === undefined
      ? `  identity      tokens signed by your ${jwtKeySetting} (issuer ${revealConfig.jwt.issuer}, audience ${revealConfig.jwt.audience.join(',')}); npm run token does not apply`
      : `  identity      local ES256 key in ${join(config.dataDir, 'jwt')} (npm run token) — NOT FOR PRODUCTION`,
  );
  const checkpoints = revealConfig.auditCheckpoints;
  if (checkpoints !== undefined) {
    const signer = checkpoints.signer.kind === 'local' ? `local-only key ${checkpoints.signer.file} (public key: ${checkpoints.signer.file}.pub.pem)` : `AWS KMS key ${checkpoints.signer.keyId}`;
    const ed25519 = checkpoints.ed25519 === undefined ? '' : checkpoints.ed25519.kind === 'local' ? ` and local-only Ed25519 key ${checkpoints.ed25519.file}` : ` and AWS KMS Ed25519 key ${checkpoints.ed25519.keyId}`;
    say(`  audit         checkpoints (C2SP signed notes) every ${checkpoints.intervalMs / 1000} s, signed by ${signer}${ed25519}`);
    if (checkpoints.file !== undefined) say(`                published to ${checkpoints.file}`);
    for (const item of checkpoints.witnesses) say(`                cosigned by the witness at ${item.url}`);
    await warnAboutOrphanedAudit(owner, checkpoints.file, witness?.dataDir);
  }
  if (witness !== undefined) {
    say(`  witness       ${witness.url}  (npm run witness: its own process, data in ${witness.dataDir}; cosignature key ${witness.vkey.split('+').slice(0, 2).join('+')}, vkey in ${join(witness.dataDir, 'witness-key.pem.vkey')})`);
  }
  if (revealConfig.console.enabled) say(`  console       ${revealUrl}/console/  (${consoleSignIn(revealConfig, signingKey !== undefined)})`);
  await claim.publish({ ...(config.external.databaseUrl === undefined ? { databaseUrl } : {}), revealUrl });

  const ingestorDatabase = await openDatabase(ingestorConfig.database, { applicationName: 'tokenvault-ingestor', logger });
  shutdown.add(() => ingestorDatabase.close());
  const sqs = sqsClientFor(ingestorConfig, sqsSetup.embedded ? LOCAL_AWS_CREDENTIALS : undefined);
  shutdown.add(() => sqs.destroy());
  // The same composition as the ingestor container (services/ingestor/main.ts), from the same config.
  const running = await startIngestor(ingestorConfig, { sqs, database: ingestorDatabase, keys, logger }).catch((error: unknown) => {
    throw listenError(error, metricsListenTarget(ingestorConfig));
  });
  const ingestor = running.ingestor;
  shutdown.add(() => running.stop());
  if (ingestorConfig.metrics !== undefined && running.health !== undefined) {
    const { initial, min, max } = ingestorConfig.pollers;
    say(`  ingestor      receives in flight follow latency (${initial} at start, ${min}–${max}); metrics http://${ingestorConfig.metrics.host}:${running.health.port}/metrics`);
  }

  await reportDrain(ingestor, sqs, ingestorConfig.sqs.queueUrl, owner);
  if (signingKey !== undefined) await printRevealExample(owner, signingKey, revealUrl);
  say('\nRunning. Ctrl-C to stop.');
}

/** The ports npm start is about to listen on (not PostgreSQL's: its own start names a stale server of this directory). */
function listenTargets(config: LocalConfig): ListenTarget[] {
  return [
    { setting: 'PORT', port: config.revealPort, host: config.revealHost, hostSetting: 'HOST' },
    { setting: 'METRICS_PORT', port: config.metricsPort, host: config.metricsHost, hostSetting: 'METRICS_HOST' },
    ...(config.external.queueUrl === undefined ? [{ setting: 'LOCAL_SQS_PORT', port: config.sqsPort, host: '127.0.0.1' }] : []),
  ];
}

/** A failed listen as a StartError naming the setting; anything else as it is. */
function listenError(error: unknown, target: ListenTarget): unknown {
  // Only the listen's own failures are about the port (a file read at start can fail with EACCES too).
  const described = (error as { syscall?: unknown } | null)?.syscall === 'listen' ? describeListenFailure(error, target) : undefined;
  return described === undefined ? error : new StartError(described);
}

/** How to sign in to the console, in the words of the start summary. */
function consoleSignIn(revealConfig: RevealConfig, localIdentity: boolean): string {
  if (revealConfig.console.localSignIn) return 'local sign-in for any role, on this machine only';
  const oidc = revealConfig.console.oidc === undefined ? undefined : `sign-in through ${new URL(revealConfig.console.oidc.issuer).host}`;
  if (!localIdentity || isLoopbackHost(revealConfig.host)) return oidc ?? 'no sign-in configured: set CONSOLE_OIDC_ISSUER and CONSOLE_OIDC_CLIENT_ID';
  const port = revealConfig.port;
  return (
    `local sign-in off: HOST=${revealConfig.host} is reachable from the network and the local sign-in exists only on a loopback listener; ` +
    `${oidc ?? 'sign in through your identity provider (CONSOLE_OIDC_ISSUER, CONSOLE_OIDC_CLIENT_ID)'}, or leave HOST unset and reach it from elsewhere with ssh -L ${port}:127.0.0.1:${port} <this machine>`
  );
}

/**
 * npm start signs audit checkpoints with local keys (P-256 and Ed25519) and publishes them to a
 * file, unless configured otherwise.
 */
function auditCheckpointEnv(config: LocalConfig): Record<string, string> {
  const env = config.env;
  if (env.AUDIT_SIGNING_KEY_ID !== undefined && env.AUDIT_SIGNING_KEY_ID !== '') return {};
  return {
    AUDIT_SIGNING_KEY_FILE: env.AUDIT_SIGNING_KEY_FILE ?? join(config.dataDir, 'audit', 'signing-key.pem'),
    AUDIT_CHECKPOINT_FILE: env.AUDIT_CHECKPOINT_FILE ?? join(config.dataDir, 'audit', 'checkpoints.jsonl'),
    ...(env.AUDIT_ED25519_KEY_ID === undefined || env.AUDIT_ED25519_KEY_ID === ''
      ? { AUDIT_ED25519_KEY_FILE: env.AUDIT_ED25519_KEY_FILE ?? join(config.dataDir, 'audit', 'ed25519-key.pem') }
      : {}),
  };
}

/**
 * The local witness (a second party: its own process, data directory and key) follows the local
 * log's keys, unless the user named witnesses (AUDIT_WITNESS_URLS) or signs in KMS.
 */
async function startWitness(config: LocalConfig, reveal: RevealConfig): Promise<LocalWitness | undefined> {
  const checkpoints = reveal.auditCheckpoints;
  if (checkpoints === undefined || checkpoints.signer.kind !== 'local' || checkpoints.witnesses.length > 0) return undefined;
  const auditSigner = await LocalAuditSigner.open(checkpoints.signer.file);
  const { signers } = await createNoteSigners(checkpoints, auditSigner);
  const witness = await startLocalWitness({
    port: config.witnessPort,
    dataDir: join(config.dataDir, 'witness'),
    logKeys: signers.map((signer) => signer.verifierKey),
    logLevel: config.env.LOG_LEVEL ?? 'warn',
    env: config.env,
  }).catch((error: unknown) => {
    throw new StartError(`the local witness could not start on 127.0.0.1:${config.witnessPort} (LOCAL_WITNESS_PORT)`, error);
  });
  shutdown.add(() => witness.stop());
  return witness;
}

/** A new database beside the published checkpoints of a deleted one: the checkpointer will (rightly) refuse; say why and what to do. */
async function warnAboutOrphanedAudit(owner: Database, checkpointsFile: string | undefined, witnessDir: string | undefined): Promise<void> {
  const { rows } = await owner.pool.query<{ stored: boolean }>('SELECT EXISTS (SELECT 1 FROM audit_checkpoints) AS stored');
  if (rows[0]?.stored === true || checkpointsFile === undefined) return;
  const published = await new FileCheckpointSink(checkpointsFile).latest().catch(() => undefined);
  if (published === undefined) return;
  say(
    `  WARNING       ${checkpointsFile} holds checkpoints of an audit log this database does not have (was the database deleted?): ` +
      `the checkpointer refuses to sign a log that does not extend them. To start a new log, stop, remove ${dirname(checkpointsFile)}` +
      `${witnessDir === undefined ? '' : ` and ${witnessDir}`}, and start again.`,
  );
}

async function startDatabase(config: LocalConfig): Promise<string> {
  if (config.external.databaseUrl !== undefined) {
    say(`  database      ${redact(config.external.databaseUrl)} (DATABASE_URL)`);
    return config.external.databaseUrl;
  }
  const dir = join(config.dataDir, 'postgres');
  // Its own process group: Ctrl-C reaches us only, and PostgreSQL stops last, after the drain.
  // The cleanup is added before the start settles: a Ctrl-C during start-up waits for it, then stops it.
  const starting = shutdown.starting(
    startEmbeddedPostgres({ dir, port: config.postgresPort, detached: true }).then((started) => {
      shutdown.add(() => started.stop(), { essential: true });
      return started;
    }),
  );
  const pg = await starting.catch((error: unknown) => {
    if (error instanceof PostgresAlreadyRunningError) {
      throw new StartError(`already running from this directory (PostgreSQL pid ${error.pid} holds ${dir}): stop it first, or kill ${error.pid} if its npm start is gone`);
    }
    if (error instanceof PostgresPortInUseError) {
      throw new StartError(`port ${config.postgresPort} is in use by another program: set LOCAL_POSTGRES_PORT to a free port`);
    }
    if (error instanceof PostgresUserError) throw new StartError(error.message);
    throw new StartError(`embedded PostgreSQL could not start on 127.0.0.1:${config.postgresPort} (LOCAL_POSTGRES_PORT)`, error);
  });
  say(`  database      ${pg.url}  (embedded PostgreSQL, data in ${dir}${pg.dataDir === dir ? '' : ` → ${pg.dataDir}`})`);
  return pg.url;
}

interface QueueSetup {
  queueUrl: string;
  /** Endpoint the SQS client must use (embedded server), undefined for real AWS / AWS_ENDPOINT_URL*. */
  endpoint: string | undefined;
  embedded: boolean;
}

async function startQueue(config: LocalConfig, owner: Database): Promise<QueueSetup> {
  if (config.external.queueUrl !== undefined) {
    say(`  queue         ${config.external.queueUrl} (SQS_QUEUE_URL)`);
    return { queueUrl: config.external.queueUrl, endpoint: undefined, embedded: false };
  }
  const server = await startEmbeddedSqs({ port: config.sqsPort }).catch((error: unknown) => {
    const described = describeListenFailure(error, { setting: 'LOCAL_SQS_PORT', port: config.sqsPort, host: '127.0.0.1' });
    throw new StartError(described ?? `the embedded SQS endpoint could not listen on 127.0.0.1:${config.sqsPort} (LOCAL_SQS_PORT)`, described === undefined ? error : undefined);
  });
  shutdown.add(() => server.close());
  const sqs = sqsClient('us-east-1', server.endpoint, true);
  try {
    const { queueUrl, deadLetterQueueUrl } = await createLoginQueues(sqs);
    say(`  queue         ${queueUrl}  (dead letters: ${deadLetterQueueUrl})`);
    // Counts only: receive-message would hide a message from the ingestor for the visibility timeout.
    say(
      `                AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --region us-east-1 --endpoint-url ${server.endpoint} ` +
        `sqs get-queue-attributes --queue-url ${queueUrl} --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible`,
    );
    // local-aws-sqs has no persistence (its queues are objects in this process): say so where people look.
    say('                in memory only: messages still queued when npm start stops (Ctrl-C or kill) are lost; set SQS_QUEUE_URL for a durable queue');
    // The database says which reference messages it still lacks.
    const missing = await missingReferenceLines(owner.pool, REFERENCE_DATA);
    if (missing.length > 0) {
      const sent = await sendLines(sqs, queueUrl, missing);
      say(`                loaded ${sent} reference messages from data/login-queue.sample.jsonl`);
    }
    return { queueUrl, endpoint: server.endpoint, embedded: true };
  } finally {
    sqs.destroy();
  }
}

function sqsClient(region: string, endpoint: string | undefined, embedded: boolean): SQSClient {
  return new SQSClient({
    region,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(embedded ? { credentials: LOCAL_AWS_CREDENTIALS } : {}),
  });
}

/** Shows progress while the queue drains, then a summary of what this run stored and quarantined. */
async function reportDrain(ingestor: Ingestor, sqs: SQSClient, queueUrl: string, owner: Database): Promise<void> {
  const startedAt = Date.now();
  let lastLine = '';
  for (;;) {
    const depth = await queueDepth(sqs, queueUrl).catch(() => undefined);
    const stats = ingestor.stats();
    const line = `  draining      ${stats.stored} stored, ${stats.duplicates} duplicates, ${stats.quarantined} quarantined; queue: ${depth?.visible ?? '?'} waiting, ${depth?.inFlight ?? '?'} in flight`;
    if (line !== lastLine) {
      say(line);
      lastLine = line;
    }
    if (depth !== undefined && depth.visible === 0 && depth.inFlight === 0 && stats.inFlight === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const stats = ingestor.stats();
  const totals = await owner.pool.query<{ rows: string; quarantined: string }>(
    'SELECT (SELECT count(*) FROM user_logins) AS rows, (SELECT count(*) FROM quarantine) AS quarantined',
  );
  const total = totals.rows[0];
  say(`  summary       ${stats.stored} stored, ${stats.quarantined} quarantined this run (${((Date.now() - startedAt) / 1000).toFixed(1)} s); ` +
    `database holds ${total?.rows ?? '?'} rows in user_logins, ${total?.quarantined ?? '?'} in quarantine`);
}

async function printRevealExample(
  owner: Database,
  signingKey: LocalSigningKey,
  revealUrl: string,
): Promise<void> {
  const { rows } = await owner.pool.query<{ masked_ip: string }>('SELECT masked_ip FROM user_logins ORDER BY ingested_at LIMIT 1');
  const token = rows[0]?.masked_ip;
  if (token === undefined) return;
  const jwt = await mintLocalToken(signingKey, { sub: 'local-investigator', roles: ['investigator'], ttl: '1h' });
  say('\nReveal one stored token as an investigator (JWT valid 1 h; mint more with `npm run token -- --sub alice --roles investigator`):');
  say(
    `  curl -s -X POST ${revealUrl}/reveal -H "Authorization: Bearer ${jwt}" -H 'content-type: application/json' ` +
      `-d '{"tokens":["${token}"],"purpose":"local smoke test of the reveal path"}'`,
  );
}

/** The owner's pool (migrations, setup), reached once: a database that does not answer stops the start, saying why. */
async function openOwner(url: string, external: boolean, logger: Logger): Promise<Database> {
  try {
    return await openDatabase({ url, role: undefined, poolSize: 2 }, { applicationName: 'tokenvault-local', logger, reach: true });
  } catch (error) {
    if (!(error instanceof DatabaseUnreachableError)) throw error;
    if (!external) throw new StartError(error.message, error.cause);
    // An exported DATABASE_URL outlives the npm start that printed it: say what it changes.
    const instead = isEmbeddedPostgresUrl(url)
      ? 'it is the URL of an embedded PostgreSQL that an earlier npm start printed, and that one is not running now. Run `unset DATABASE_URL`, and npm start starts its own again'
      : 'unset it to use the embedded PostgreSQL';
    throw new StartError(`${error.message}.\n  DATABASE_URL is set, so npm start uses that database instead of starting its embedded PostgreSQL: ${instead}`);
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** A part of the stack could not start; the message names the setting that controls it. */
class StartError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
  }
}

main().catch(async (error: unknown) => {
  if (error instanceof ConfigError) console.error(`cannot start: ${error.message}`);
  else if (error instanceof AlreadyRunningError) console.error(`cannot start: ${error.message}`);
  else if (error instanceof StartError) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    console.error(`cannot start: ${error.message}${cause}`);
  } else console.error(`cannot start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await shutdown.closeAll();
  process.exit(1);
});

