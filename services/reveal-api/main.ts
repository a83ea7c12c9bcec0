import closeWithGrace from 'close-with-grace';
import { createDatabase } from '../../db/client.js';
import { processEnv } from '../../lib/config/env.js';
import { ConfigError } from '../../lib/errors.js';
import { createKeyProvider } from '../../lib/keys/create-key-provider.js';
import { buildRevealApp } from './app.js';
import { loadRevealConfig } from './config.js';

/** The container entry point: config once, build, listen, close gracefully on SIGTERM. */
async function main(): Promise<void> {
  const config = loadRevealConfig(processEnv());
  const database = createDatabase(config.database, { applicationName: 'tokenvault-reveal-api' });
  const keys = await createKeyProvider(config.keyProvider);
  const app = await buildRevealApp({ config, database, keys });
  closeWithGrace({ delay: config.shutdownTimeoutMs, logger: app.log }, async ({ err, signal }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an unexpected error');
    else app.log.info({ signal }, 'closing');
    // Stops accepting connections, lets in-flight requests (and their audit rows) finish.
    await app.close();
    await database.close();
    keys.close();
  });
  app.log.info({ keyProvider: keys.description }, 'key provider ready');
  await app.listen({ host: config.host, port: config.port });
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exitCode = 1;
});
