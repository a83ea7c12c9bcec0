import { processEnv } from '../lib/config/env.js';
import { openDatabase } from '../lib/runtime/database.js';
import { openKeys } from '../lib/runtime/keys.js';
import { loadRotationConfig } from '../lib/keys/rotation/config.js';
import { abortOnSignals } from '../lib/keys/rotation/interrupt.js';
import { rotateTokenKey } from '../lib/keys/rotation/rotate-token-key.js';
import { createProgressReporter } from './progress.js';
import { runMain } from '../lib/entry-point.js';

/**
 * `npm run keys:rotate-token-key`: activates a new HMAC token key version and re-tokenises
 * the vault and user_logins to it while ingestors keep running. Safe to interrupt (Ctrl-C
 * stops after the current batch); running it again resumes. See docs/key-rotation.md.
 */
async function main(): Promise<number> {
  const config = loadRotationConfig(processEnv());
  const database = await openDatabase(config.database, { applicationName: 'tokenvault-rotate-token-key' });
  const provider = await openKeys(config.keyProvider);
  const progress = createProgressReporter();
  const interrupt = abortOnSignals((signal) => progress.note(`${signal}: stopping after the current batch (again to exit at once)`));
  try {
    await provider.check();
    const result = await rotateTokenKey(database, provider, {
      dataKeyPolicy: config.dataKeyPolicy,
      batchSize: config.batchSize,
      settleSeconds: config.settleSeconds,
      signal: interrupt.signal,
      onProgress: (p) => {
        if (p.phase === 'settle') progress.update(`waiting for ingestors to switch to v${p.version}`, config.settleSeconds - p.secondsLeft, config.settleSeconds);
        else progress.update(`vault rows -> v${p.version}`, p.done, p.total);
      },
    });
    progress.stop();
    console.log(
      `token key v${result.version} ${result.created ? 'activated by this run' : '(resumed rotation)'}: ` +
        `${result.vaultRowsRetokenized} vault rows re-tokenised, ` +
        `${result.userLoginTokensRewritten.ip} masked_ip and ${result.userLoginTokensRewritten.device_id} masked_device_id values rewritten` +
        (result.vaultRowsGone > 0 ? `, ${result.vaultRowsGone} vault rows erased meanwhile (not recreated)` : '') +
        (result.loginRowsFailedAuthentication > 0
          ? `; ${result.loginRowsFailedAuthentication} user_logins token rewrites touched rows whose tag does not hold (edited in the database): tokens moved, tag left failing — investigate them`
          : ''),
    );
    if (!result.completed) {
      console.log(`${result.remaining.vault} vault rows still on an older version: run the command again to resume`);
      return interrupt.signal.aborted ? 130 : 1;
    }
    if (result.remaining.userLogins > 0) {
      console.log(
        `${result.remaining.userLogins} user_logins rows keep a retired-version token: their vault value no longer exists (erased), so they cannot be re-tokenised`,
      );
    }
    console.log(`done: all vault values are under token key v${result.version}`);
    return 0;
  } finally {
    interrupt.dispose();
    progress.stop();
    provider.close();
    await database.close();
  }
}

runMain('keys:rotate-token-key', main);
