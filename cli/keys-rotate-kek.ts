import { processEnv } from '../lib/config/env.js';
import { openDatabase } from '../lib/runtime/database.js';
import { openKeys } from '../lib/runtime/keys.js';
import { loadRotationConfig } from '../lib/keys/rotation/config.js';
import { abortOnSignals } from '../lib/keys/rotation/interrupt.js';
import { rotateKek } from '../lib/keys/rotation/rotate-kek.js';
import { createProgressReporter } from './progress.js';
import { runMain } from '../lib/entry-point.js';

/**
 * `npm run keys:rotate-kek`: re-wraps every data key and token key under KMS_KEY_ID (the new
 * key-encryption key) with KMS ReEncrypt. Vault rows are not touched. Resumable: run it again
 * after an interruption. See docs/key-rotation.md.
 */
async function main(): Promise<number> {
  const config = loadRotationConfig(processEnv());
  const database = await openDatabase(config.database, { applicationName: 'tokenvault-rotate-kek' });
  const provider = await openKeys(config.keyProvider);
  const progress = createProgressReporter();
  const interrupt = abortOnSignals((signal) => progress.note(`${signal}: stopping after the current batch (again to exit at once)`));
  try {
    await provider.check();
    progress.note(`Re-wrapping data keys and token keys under ${provider.description}`);
    const result = await rotateKek(database, provider, {
      batchSize: config.batchSize,
      concurrency: config.kmsConcurrency,
      signal: interrupt.signal,
      onProgress: (p) => progress.update(p.table, p.done, p.total),
    });
    progress.stop();
    const { rewrapped, alreadyCurrent } = result;
    console.log(
      `token_keys: ${rewrapped.token_keys} rewrapped, ${alreadyCurrent.token_keys} already current; ` +
        `data_keys: ${rewrapped.data_keys} rewrapped, ${alreadyCurrent.data_keys} already current`,
    );
    if (result.kekId === undefined) {
      console.log('nothing to rewrap: no keys stored yet');
      return 0;
    }
    if (result.completed) {
      console.log(
        config.keyProvider.kind === 'aws-kms'
          ? `done: every key is wrapped by ${result.kekId}; disable the previous KMS key once no service is configured with it`
          : `done: every key is wrapped by ${result.kekId} (a local keyring has one key: re-wrapping cannot move to another; use KMS)`,
      );
      return 0;
    }
    console.log(`${result.remaining} keys are still wrapped by another KMS key: run the command again to finish`);
    return interrupt.signal.aborted ? 130 : 1;
  } finally {
    interrupt.dispose();
    progress.stop();
    provider.close();
    await database.close();
  }
}

runMain('keys:rotate-kek', main);
