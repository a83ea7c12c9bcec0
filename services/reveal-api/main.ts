import closeWithGrace from 'close-with-grace';
import type { FastifyBaseLogger } from 'fastify';
import { createDatabase } from '../../db/client.js';
import { processEnv } from '../../lib/config/env.js';
import { runMain } from '../../lib/entry-point.js';
import { ConfigError } from '../../lib/errors.js';
import { describeListenFailure } from '../../lib/net/listen-errors.js';
import { createKeyProvider } from '../../lib/keys/create-key-provider.js';
import { buildRevealApp } from './app.js';
import { loadRevealConfig } from './config.js';

/** The container entry point: config once, build, listen, close gracefully on SIGTERM. */
async function main(): Promise<void> {
  const config = loadRevealConfig(processEnv());
  // Lost connections are logged by the app's logger, which exists once the app is built.
  const logs: { to?: FastifyBaseLogger } = {};
  const database = createDatabase(config.database, {
    applicationName: 'tokenvault-reveal-api',
    logger: { warn: (object, message) => logs.to?.warn(object, message) },
  });
  const keys = await createKeyProvider(config.keyProvider);
  const app = await buildRevealApp({ config, database, keys });
  logs.to = app.log;
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: app.log }, async ({ err, signal }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an unexpected error');
    else app.log.info({ signal }, 'closing');
    // Stops accepting connections, lets in-flight requests (and their audit rows) finish.
    await app.close();
    await database.close();
    keys.close();
  });
  app.log.info({ keyProvider: keys.description }, 'key provider ready');
  await app.listen({ host: config.host, port: config.port }).catch((error: unknown) => {
    const described = describeListenFailure(error, { setting: 'PORT', port: config.port, host: config.host, hostSetting: 'HOST' });
    throw described === undefined ? error : new ConfigError(`reveal-api cannot start: ${described}`, ['PORT', 'HOST']);
  });
}

runMain('reveal-api', main);
