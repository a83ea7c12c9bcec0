import {
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSClient,
  KMSServiceException,
  ReEncryptCommand,
} from '@aws-sdk/client-kms';
import { KeyProviderError } from '../errors.js';
import { encryptionContext, type GeneratedKey, type KeyProvider, type KeyPurpose, type WrappedKey } from './key-provider.js';

export interface AwsKmsOptions {
  keyId: string;
  region: string;
  endpoint: string | undefined;
  /** Static credentials for local endpoints (or a provider); production uses the SDK's default chain (IAM role, env, profile). */
  credentials?: AwsCredentials | (() => Promise<AwsCredentials>);
}

type AwsCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** What to check when AWS refuses who we are. */
const CREDENTIALS_HINT = 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, or the IAM role';
const REJECTED_CREDENTIALS = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'IncompleteSignature', 'ExpiredTokenException', 'InvalidClientTokenId']);

/** Faults worth retrying: KMS throttled us, is having a bad moment, or the network dropped. */
const TRANSIENT_KMS_ERRORS = new Set([
  'ThrottlingException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'KeyUnavailableException',
  'LimitExceededException',
]);

export class AwsKmsKeyProvider implements KeyProvider {
  readonly description: string;
  private readonly client: KMSClient;
  private readonly keyId: string;
  /** Where KMS calls go, for error messages: the endpoint setting, or AWS in the region. */
  private readonly where: string;

  constructor(options: AwsKmsOptions) {
    this.keyId = options.keyId;
    this.where = options.endpoint === undefined ? `AWS KMS in ${options.region}` : `the KMS endpoint ${options.endpoint}`;
    this.client = new KMSClient({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxAttempts: 3,
    });
    this.description = `AWS KMS key ${options.keyId}${options.endpoint === undefined ? '' : ` at ${options.endpoint}`}`;
  }

  async generateDataKey(purpose: KeyPurpose): Promise<GeneratedKey> {
    const out = await this.call('GenerateDataKey', () =>
      this.client.send(
        new GenerateDataKeyCommand({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: encryptionContext(purpose) }),
      ),
    );
    if (out.Plaintext === undefined || out.CiphertextBlob === undefined || out.KeyId === undefined) {
      throw new KeyProviderError('kms_bad_response', 'KMS GenerateDataKey returned no key material');
    }
    return { plaintext: Buffer.from(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob), kekId: out.KeyId };
  }

  async decryptDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<Buffer> {
    const out = await this.call('Decrypt', () =>
      this.client.send(
        new DecryptCommand({ CiphertextBlob: key.wrapped, KeyId: key.kekId, EncryptionContext: encryptionContext(purpose) }),
      ),
      key.kekId,
    );
    if (out.Plaintext === undefined) throw new KeyProviderError('kms_bad_response', 'KMS Decrypt returned no plaintext');
    return Buffer.from(out.Plaintext);
  }

  async rewrapDataKey(key: WrappedKey, purpose: KeyPurpose): Promise<WrappedKey> {
    const context = encryptionContext(purpose);
    const out = await this.call('ReEncrypt', () =>
      this.client.send(
        new ReEncryptCommand({
          CiphertextBlob: key.wrapped,
          SourceKeyId: key.kekId,
          SourceEncryptionContext: context,
          DestinationKeyId: this.keyId,
          DestinationEncryptionContext: context,
        }),
      ),
      key.kekId,
    );
    if (out.CiphertextBlob === undefined || out.KeyId === undefined) {
      throw new KeyProviderError('kms_bad_response', 'KMS ReEncrypt returned no ciphertext');
    }
    return { wrapped: Buffer.from(out.CiphertextBlob), kekId: out.KeyId };
  }

  async check(): Promise<void> {
    const out = await this.call('DescribeKey', () => this.client.send(new DescribeKeyCommand({ KeyId: this.keyId })));
    if (out.KeyMetadata?.Enabled === false) {
      throw new KeyProviderError('kms_key_disabled', `KMS key ${this.keyId} is disabled (KMS_KEY_ID)`);
    }
  }

  close(): void {
    this.client.destroy();
  }

  private async call<T>(operation: string, send: () => Promise<T>, keyId = this.keyId): Promise<T> {
    try {
      return await send();
    } catch (cause) {
      if (cause instanceof KMSServiceException) {
        const transient = TRANSIENT_KMS_ERRORS.has(cause.name) || cause.$fault === 'server' || cause.$retryable !== undefined;
        throw new KeyProviderError(`kms_${cause.name}`, `KMS ${operation} failed: ${this.explain(cause, operation, keyId)}`, { cause, transient });
      }
      if (cause instanceof Error && cause.name === 'CredentialsProviderError') {
        throw new KeyProviderError('aws_credentials_missing', `KMS ${operation} failed: no AWS credentials found (${cause.message}); ${CREDENTIALS_HINT}`, { cause });
      }
      // No service answer at all (connection refused, DNS, timeout): the network, not the request.
      const message = cause instanceof Error ? cause.message || cause.name : String(cause);
      throw new KeyProviderError(
        'kms_unreachable',
        `KMS ${operation} failed: cannot reach ${this.where} (${message}); for a local or emulated KMS set AWS_ENDPOINT_URL_KMS (or AWS_ENDPOINT_URL), otherwise check AWS_REGION and the network`,
        { cause, transient: true },
      );
    }
  }

  /** KMS's own words plus the setting that most likely needs changing. */
  private explain(cause: KMSServiceException, operation: string, keyId: string): string {
    const said = `${cause.name}: ${cause.message}`;
    if (REJECTED_CREDENTIALS.has(cause.name)) return `${said}; AWS rejected the credentials: ${CREDENTIALS_HINT}`;
    switch (cause.name) {
      case 'NotFoundException':
        return `${said}; no key ${keyId} at ${this.where} (KMS_KEY_ID names the key, AWS_REGION its region${keyId === this.keyId ? '' : '; this key id is stored with the data'})`;
      case 'AccessDeniedException':
        return `${said}; the credentials in use may not call kms:${operation} on ${keyId} (see deploy/iam for the policy each service needs)`;
      case 'DisabledException':
      case 'KMSInvalidStateException':
        return `${said}; key ${keyId} is disabled or pending deletion: enable it, or point KMS_KEY_ID at an enabled key`;
      default:
        return said;
    }
  }
}
