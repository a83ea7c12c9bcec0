import closeWithGrace from 'close-with-grace';
import type { FastifyBaseLogger } from 'fastify';
import { processEnv } from '../../lib/config/env.js';
import { runMain } from '../../lib/entry-point.js';
import { ConfigError } from '../../lib/errors.js';
import { describeListenFailure } from '../../lib/net/listen-errors.js';
import { openDatabase } from '../../lib/runtime/database.js';
import { openKeys } from '../../lib/runtime/keys.js';
import { loadRevealConfig, revealListenTarget, startRevealApi } from './index.js';

/** The container entry point: config once, build, listen, close gracefully on SIGTERM. */
async function main(): Promise<void> {
  const config = loadRevealConfig(processEnv());
  // Lost connections are logged by the app's logger, which exists once the app is built.
  const logs: { to?: FastifyBaseLogger } = {};
  // Neither is reached here: without its database or KMS the API starts unready and recovers.
  const database = await openDatabase(config.database, {
    applicationName: 'tokenvault-reveal-api',
    logger: { warn: (object, message) => logs.to?.warn(object, message) },
  });
  const keys = await openKeys(config.keyProvider);
  await startRevealApi(config, { database, keys }, (app) => {
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
  }).catch((error: unknown) => {
    // Only the listen's own failures are about PORT/HOST (a policy file can fail with EACCES too).
    const described = (error as { syscall?: unknown }).syscall === 'listen' ? describeListenFailure(error, revealListenTarget(config)) : undefined;
    throw described === undefined ? error : new ConfigError(`reveal-api cannot start: ${described}`, ['PORT', 'HOST']);
  });
}

runMain('reveal-api', main);
