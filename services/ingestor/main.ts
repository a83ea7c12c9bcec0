import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import type { Database } from '../../db/client.js';
import { processEnv } from '../../lib/config/env.js';
import { runMain } from '../../lib/entry-point.js';
import type { KeyProvider } from '../../lib/keys/key-provider.js';
import { describeListenFailure } from '../../lib/net/listen-errors.js';
import { DatabaseUnreachableError, openDatabase } from '../../lib/runtime/database.js';
import { KeysUnusableError, openKeys } from '../../lib/runtime/keys.js';
import { loadIngestorConfig, metricsListenTarget, sqsClientFor, startIngestor, type IngestorConfig, type RunningIngestor } from './index.js';

/**
 * The ingestor container: SQS → validate → tokenise → encrypt → PostgreSQL. It does not
 * run migrations (a separate migrate job does), so a fresh database must be migrated first.
 */
async function main(): Promise<number | void> {
  const config: IngestorConfig = loadIngestorConfig(processEnv());
  const logger = pino({ level: config.logLevel, base: { service: 'ingestor' } });
  const sqs = sqsClientFor(config);
  let database: Database | undefined;
  let keys: KeyProvider | undefined;
  /** Logs why the ingestor cannot start, closes what was opened; the exit code. */
  const fail = async (message: string, error: unknown): Promise<number> => {
    logger.fatal({ err: { name: (error as Error).name, message: (error as Error).message } }, message);
    await database?.close().catch(() => undefined);
    keys?.close();
    sqs.destroy();
    return 1;
  };
  try {
    database = await openDatabase(config.database, { applicationName: 'tokenvault-ingestor', logger, reach: true });
    keys = await openKeys(config.keyProvider, { check: true });
  } catch (error) {
    if (error instanceof DatabaseUnreachableError || error instanceof KeysUnusableError) return fail(error.message, error.cause);
    throw error;
  }

  let running: RunningIngestor;
  try {
    running = await startIngestor(config, { sqs, database, keys, logger });
  } catch (error) {
    if ((error as { syscall?: unknown }).syscall === 'listen') {
      const target = metricsListenTarget(config);
      return fail(describeListenFailure(error, target) ?? `the metrics and health endpoints cannot listen on ${target.host}:${target.port} (METRICS_HOST, METRICS_PORT)`, error);
    }
    const code = (error as { code?: unknown }).code;
    const hint = code === '42P01' ? ' — the schema is missing: run the migrations first (npm run db:migrate)' : '';
    return fail(`loading the active token key failed (DATABASE_URL, KMS_KEY_ID)${hint}`, error);
  }

  const opened = { database, keys };
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err: { name: err.name, message: err.message } }, 'unexpected error; shutting down');
    else logger.info({ signal }, 'shutting down: finishing in-flight batches');
    await running.stop();
    await opened.database.close();
    opened.keys.close();
    sqs.destroy();
  });
}

runMain('ingestor', main);
