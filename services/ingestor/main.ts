import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { createDatabase } from '../../db/client.js';
import { describeDatabaseFailure } from '../../db/connection-error.js';
import { processEnv } from '../../lib/config/env.js';
import { runMain } from '../../lib/entry-point.js';
import { describeListenFailure } from '../../lib/net/listen-errors.js';
import { createKeyProvider } from '../../lib/keys/create-key-provider.js';
import { loadIngestorConfig, type IngestorConfig } from './config.js';
import { createIngestorSqsClient } from './sqs-client.js';
import { startIngestor, type RunningIngestor } from './start.js';

/**
 * The ingestor container: SQS → validate → tokenise → encrypt → PostgreSQL. It does not
 * run migrations (a separate migrate job does), so a fresh database must be migrated first.
 */
async function main(): Promise<number | void> {
  const config: IngestorConfig = loadIngestorConfig(processEnv());
  const logger = pino({ level: config.logLevel, base: { service: 'ingestor' } });
  const database = createDatabase(config.database, { applicationName: 'tokenvault-ingestor', logger });
  const keys = await createKeyProvider(config.keyProvider);
  const sqs = createIngestorSqsClient({ region: config.sqs.region, endpoint: config.sqs.endpoint, maxPollers: config.pollers.max });

  /** Logs why the ingestor cannot start, closes what was opened; the exit code. */
  const fail = async (message: string, error: unknown): Promise<number> => {
    logger.fatal({ err: { name: (error as Error).name, message: (error as Error).message } }, message);
    await database.close().catch(() => undefined);
    keys.close();
    sqs.destroy();
    return 1;
  };

  try {
    await database.pool.query('SELECT 1');
  } catch (error) {
    return fail(describeDatabaseFailure(error, config.database.url), error);
  }
  try {
    await keys.check();
  } catch (error) {
    const setting = config.keyProvider.kind === 'aws-kms' ? 'KMS_KEY_ID' : 'LOCAL_MASTER_KEY_FILE';
    return fail(`the key provider is not usable: ${keys.description} (${setting})`, error);
  }

  let running: RunningIngestor;
  try {
    running = await startIngestor(config, { sqs, database, keys, logger });
  } catch (error) {
    if ((error as { syscall?: unknown }).syscall === 'listen') {
      const target = { setting: 'METRICS_PORT', port: config.metrics?.port ?? 0, host: config.metrics?.host ?? '', hostSetting: 'METRICS_HOST' };
      return fail(describeListenFailure(error, target) ?? `the metrics and health endpoints cannot listen on ${target.host}:${target.port} (METRICS_HOST, METRICS_PORT)`, error);
    }
    const code = (error as { code?: unknown }).code;
    const hint = code === '42P01' ? ' — the schema is missing: run the migrations first (npm run db:migrate)' : '';
    return fail(`loading the active token key failed (DATABASE_URL, KMS_KEY_ID)${hint}`, error);
  }

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err: { name: err.name, message: err.message } }, 'unexpected error; shutting down');
    else logger.info({ signal }, 'shutting down: finishing in-flight batches');
    await running.stop();
    await database.close();
    keys.close();
    sqs.destroy();
  });
}

runMain('ingestor', main);
