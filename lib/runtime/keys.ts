import type { KeyProviderConfig } from '../config/shared.js';
import { TokenvaultError } from '../errors.js';
import { createKeyProvider } from '../keys/create-key-provider.js';
import type { KeyProvider } from '../keys/key-provider.js';

/** The key provider failed its check at start; the message names it and the setting that chose it. */
export class KeysUnusableError extends TokenvaultError {
  constructor(message: string, cause: unknown) {
    super('keys_unusable', message, { cause });
  }
}

/** The setting that chose the key provider, for messages. */
export function keyProviderSetting(config: KeyProviderConfig): 'KMS_KEY_ID' | 'LOCAL_MASTER_KEY_FILE' {
  return config.kind === 'aws-kms' ? 'KMS_KEY_ID' : 'LOCAL_MASTER_KEY_FILE';
}

/**
 * The key provider the settings name (AWS KMS or the local keyring). With `check`, its key is
 * proven usable first (a wrong KMS key id, no permission, an unreadable master key file): on
 * failure the provider is closed and KeysUnusableError names the setting. Without it (reveal-api)
 * a KMS outage at start leaves the service up and unready rather than stopped.
 */
export async function openKeys(config: KeyProviderConfig, options: { check?: boolean } = {}): Promise<KeyProvider> {
  const keys = await createKeyProvider(config);
  if (options.check !== true) return keys;
  try {
    await keys.check();
  } catch (error) {
    keys.close();
    throw new KeysUnusableError(`the key provider is not usable: ${keys.description} (${keyProviderSetting(config)})`, error);
  }
  return keys;
}
