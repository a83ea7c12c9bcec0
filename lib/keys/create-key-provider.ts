import type { KeyProviderConfig } from '../config/shared.js';
import { AwsKmsKeyProvider } from './aws-kms.js';
import type { KeyProvider } from './key-provider.js';
import { LocalKeyring } from './local-keyring.js';

export async function createKeyProvider(config: KeyProviderConfig): Promise<KeyProvider> {
  if (config.kind === 'aws-kms') return new AwsKmsKeyProvider(config);
  return LocalKeyring.open(config.file);
}
