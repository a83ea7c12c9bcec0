import { SQSClient } from '@aws-sdk/client-sqs';
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { createDatabase } from '../../db/client.js';
import { describeDatabaseFailure } from '../../db/connection-error.js';
import { processEnv } from '../../lib/config/env.js';
import { ConfigError } from '../../lib/errors.js';
import { createKeyProvider } from '../../lib/keys/create-key-provider.js';
import { loadIngestorConfig, type IngestorConfig } from './config.js';
import { startHealthServer, type HealthServer } from './http.js';
import { createIngestor } from './worker.js';

/**
 * The ingestor container: SQS → validate → tokenise → encrypt → PostgreSQL. It does not
 * run migrations (a separate migrate job does), so a fresh database must be migrated first.
 */
async function main(): Promise<void> {
  let config: IngestorConfig;
  try {
    config = loadIngestorConfig(processEnv());
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const logger = pino({ level: config.logLevel, base: { service: 'ingestor' } });
  const database = createDatabase(config.database, { applicationName: 'tokenvault-ingestor' });
  const keys = await createKeyProvider(config.keyProvider);
  const sqs = new SQSClient({ region: config.sqs.region, ...(config.sqs.endpoint === undefined ? {} : { endpoint: config.sqs.endpoint }) });

  const fail = async (message: string, error: unknown): Promise<never> => {
    logger.fatal({ err: { name: (error as Error).name, message: (error as Error).message } }, message);
    await database.close().catch(() => undefined);
    keys.close();
    sqs.destroy();
    process.exit(1);
  };

  try {
    await database.pool.query('SELECT 1');
  } catch (error) {
    await fail(describeDatabaseFailure(error, config.database.url), error);
  }
  try {
    await keys.check();
  } catch (error) {
    const setting = config.keyProvider.kind === 'aws-kms' ? 'KMS_KEY_ID' : 'LOCAL_MASTER_KEY_FILE';
    await fail(`the key provider is not usable: ${keys.description} (${setting})`, error);
  }

  const ingestor = createIngestor({
    sqs,
    queueUrl: config.sqs.queueUrl,
    database,
    keys,
    logger,
    options: {
      pollers: config.pollers,
      waitTimeSeconds: config.sqs.waitTimeSeconds,
      ...(config.sqs.visibilityTimeoutSeconds === undefined ? {} : { visibilityTimeoutSeconds: config.sqs.visibilityTimeoutSeconds }),
      tokenKeyRefreshMs: config.tokenKeyRefreshMs,
      knownTokenCacheSize: config.knownTokenCacheSize,
      unknownFields: config.unknownFields,
      dataKeyPolicy: config.dataKeyPolicy,
    },
  });
  try {
    await ingestor.start();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const hint = code === '42P01' ? ' — the schema is missing: run the migrations first (npm run db:migrate)' : '';
    await fail(`loading the active token key failed (DATABASE_URL, KMS_KEY_ID)${hint}`, error);
  }

  let http: HealthServer | undefined;
  if (config.metrics !== undefined) {
    http = await startHealthServer({ ...config.metrics, registry: ingestor.registry, checkReady: () => ingestor.checkReady() });
    logger.info({ host: config.metrics.host, port: http.port }, 'metrics and health endpoints listening');
  }

  closeWithGrace({ delay: config.shutdownTimeoutMs, logger }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err: { name: err.name, message: err.message } }, 'unexpected error; shutting down');
    else logger.info({ signal }, 'shutting down: finishing in-flight batches');
    await ingestor.stop();
    await http?.close();
    await database.close();
    keys.close();
    sqs.destroy();
  });
}

await main();
