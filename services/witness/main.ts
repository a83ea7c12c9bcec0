import { writeFile } from 'node:fs/promises';
import closeWithGrace from 'close-with-grace';
import { processEnv } from '../../lib/config/env.js';
import { runMain } from '../../lib/entry-point.js';
import { loadOrCreateEd25519Key } from '../../lib/keys/ed25519-key-file.js';
import { ed25519Cosigner } from '../../lib/keys/note-signers.js';
import { buildWitnessApp } from './app.js';
import { loadWitnessConfig } from './config.js';
import { WitnessStateStore } from './state-store.js';

/** `npm run witness`: a C2SP tlog-witness for the audit log, with its own data directory and key. */
async function main(): Promise<void> {
  const config = loadWitnessConfig(processEnv());
  const cosigner = ed25519Cosigner(config.name, await loadOrCreateEd25519Key(config.keyFile, 'WITNESS_KEY_FILE'));
  // The public half, for the log operator and auditors (it verifies every cosignature).
  await writeFile(`${config.keyFile}.vkey`, `${cosigner.verifierKey}\n`, { mode: 0o644 });
  const store = await WitnessStateStore.open(config.dataDir);
  const app = await buildWitnessApp({ config, store, cosigner });
  closeWithGrace({ delay: 10_000, logger: app.log }, async ({ err, signal }) => {
    if (err !== undefined) app.log.error({ err }, 'closing after an unexpected error');
    else app.log.info({ signal }, 'closing');
    await app.close();
    await store.close();
  });
  app.log.info({ witness: cosigner.verifierKey, logs: [...config.logs.keys()], dataDir: config.dataDir }, 'witness ready');
  await app.listen({ host: config.host, port: config.port });
}

runMain('witness', main);
