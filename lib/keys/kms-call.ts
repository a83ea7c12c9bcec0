import { KMSServiceException } from '@aws-sdk/client-kms';
import { KeyProviderError } from '../errors.js';

export interface KmsKeyContext {
  /** The setting that names the key, for messages (e.g. AUDIT_SIGNING_KEY_ID). */
  setting: string;
  /** What the key must be, for messages (e.g. "an asymmetric ECC_NIST_P256 key with KeyUsage SIGN_VERIFY"). */
  requirement: string;
}

/**
 * One KMS call for an asymmetric signing key, its failures classified: a key of the wrong kind is
 * permanent (audit_key_unsuitable), throttling and server faults are transient, an unreachable
 * endpoint is transient. Every message names the setting to fix.
 */
export async function callKms<T>(operation: string, send: () => Promise<T>, context: KmsKeyContext): Promise<T> {
  try {
    return await send();
  } catch (cause) {
    if (cause instanceof KeyProviderError) throw cause;
    if (cause instanceof KMSServiceException && (cause.name === 'UnsupportedOperationException' || cause.name === 'InvalidKeyUsageException')) {
      throw new KeyProviderError('audit_key_unsuitable', `KMS ${operation} failed: ${cause.name}: the key must be ${context.requirement} (${context.setting})`, { cause });
    }
    if (cause instanceof KMSServiceException) {
      const transient = cause.$fault === 'server' || cause.name === 'ThrottlingException';
      throw new KeyProviderError(`kms_${cause.name}`, `KMS ${operation} failed: ${cause.name}: ${cause.message} (${context.setting})`, { cause, transient });
    }
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new KeyProviderError('kms_unreachable', `KMS ${operation} failed: ${message} (check AWS_ENDPOINT_URL_KMS and credentials)`, { cause, transient: true });
  }
}
